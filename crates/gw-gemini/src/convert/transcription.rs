//! Pure mapping between the gateway's transcription types and `generateContent` on a Gemini
//! chat model given the audio and an instruction to transcribe it
//! (<https://ai.google.dev/gemini-api/docs/audio>: Gemini has no speech-to-text endpoint of its
//! own). No IO.
//!
//! The audio's format is read from its bytes (WAV, MP3, AIFF, AAC, Ogg, FLAC, the formats the
//! guide lists), and its length from its headers or frames, bounded from above where it cannot
//! be read, so the plan's seconds of audio are never undercounted. The answer is the transcript
//! as plain text: no timed segments, since Gemini's timestamps are text the model writes, not
//! measurements.

use std::time::Duration;

use gateway_core::{
    Billing, Charge, Error, ErrorKind, MediaInput, PriceUnit, Result, TranscriptionRequest,
    TranscriptionResponse, Usage, encode_base64,
};

use super::audio::{self, AudioFormat, Length, MAX_AUDIO, billed_seconds};
use super::speech::TOKENS_PER_SECOND;
use crate::PROVIDER;
use crate::wire;

/// A transcript takes this many output tokens a second of audio at most, in the estimate: fast
/// speech is about 4 words a second, 5 to 6 tokens.
const TRANSCRIPT_TOKENS_PER_SECOND: u64 = 8;

fn unsupported(message: impl Into<String>) -> Error {
    Error::unsupported(message).with_provider(PROVIDER)
}

fn invalid(message: impl Into<String>) -> Error {
    Error::invalid_request(message).with_provider(PROVIDER)
}

/// Audio whose format and length are known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Audio<'a> {
    /// The bytes.
    pub(crate) data: &'a [u8],
    /// Their format.
    pub(crate) format: AudioFormat,
    /// Their length.
    pub(crate) length: Length,
}

/// Whether `model` can listen: a Gemini model that is not a speech, image or embedding model.
fn listens(model: &str) -> bool {
    let id = model.strip_prefix("models/").unwrap_or(model);
    id.starts_with("gemini-")
        && !id.ends_with("-tts")
        && !id.contains("-image")
        && !id.contains("embedding")
}

/// The audio of `req`, its format and length; refuses, naming the field, what Gemini cannot
/// transcribe: another model kind, no audio, a link, bytes that are none of the formats Gemini
/// reads, a WAV or AIFF whose header gives no length, audio longer than 9.5 hours. No IO.
pub(crate) fn audio_of(req: &TranscriptionRequest) -> Result<Audio<'_>> {
    if !listens(&req.model) {
        return Err(unsupported(format!(
            "`{}` does not transcribe: use a Gemini chat model such as gemini-2.5-flash",
            req.model
        ))
        .with_param("model"));
    }
    let data: &[u8] = match &req.audio {
        Some(MediaInput::Bytes { data, .. }) if !data.is_empty() => data,
        Some(MediaInput::Url(_)) => {
            return Err(unsupported(
                "Gemini's transcription takes the audio `file` itself, not a link to it",
            )
            .with_param("file"));
        }
        _ => return Err(invalid("the audio `file` is empty").with_param("file")),
    };
    let format = audio::sniff(data).ok_or_else(|| {
        unsupported(
            "the `file` is not audio Gemini reads: it takes WAV, MP3, AIFF, AAC (ADTS), Ogg and \
             FLAC (https://ai.google.dev/gemini-api/docs/audio)",
        )
        .with_param("file")
    })?;
    let length = audio::length(format, data);
    match length {
        Length::AtMost(_) if matches!(format, AudioFormat::Wav | AudioFormat::Aiff) => {
            return Err(invalid(format!(
                "the {} `file` has no readable length in its header",
                if format == AudioFormat::Wav {
                    "WAV"
                } else {
                    "AIFF"
                }
            ))
            .with_param("file"));
        }
        Length::Exact(d) if d > MAX_AUDIO => {
            return Err(invalid(format!(
                "the audio `file` is {} seconds long; Gemini takes at most 9.5 hours",
                d.as_secs()
            ))
            .with_param("file"));
        }
        _ => {}
    }
    for name in req.options.keys() {
        if name != "temperature" {
            let why = if name == "timestamp_granularities" {
                " (it gives no timed segments or words)"
            } else {
                " (it takes `temperature`)"
            };
            return Err(unsupported(format!(
                "Gemini's transcription takes no option `{name}`{why}"
            ))
            .with_param(format!("options.{name}")));
        }
    }
    temperature(req)?;
    if let Some(lang) = &req.language {
        let ok = !lang.is_empty()
            && lang.len() <= 16
            && lang.bytes().all(|b| b.is_ascii_alphabetic() || b == b'-');
        if !ok {
            return Err(
                invalid("`language` must be a language code such as `en` or `pt-BR`")
                    .with_param("language"),
            );
        }
    }
    Ok(Audio {
        data,
        format,
        length,
    })
}

/// `options.temperature`, a number from 0 to 2 (<https://ai.google.dev/api/generate-content#FIELDS.temperature>).
fn temperature(req: &TranscriptionRequest) -> Result<Option<f64>> {
    match req.options.get("temperature") {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(v) => match v.as_f64() {
            Some(t) if (0.0..=2.0).contains(&t) => Ok(Some(t)),
            _ => {
                Err(invalid("`temperature` must be a number from 0 to 2").with_param("temperature"))
            }
        },
    }
}

/// The instruction sent with the audio: a verbatim transcript and nothing else, in `language`
/// when given, guided by `prompt`.
pub(crate) fn instruction(req: &TranscriptionRequest) -> String {
    let mut text = String::from(
        "Transcribe the speech in this audio verbatim. Answer with the transcript text only: no \
         introduction, no timestamps, no speaker labels, no commentary.",
    );
    if let Some(lang) = &req.language {
        text.push_str(&format!(
            " The speech is in the language with the code `{lang}`; write the transcript in it."
        ));
    }
    if let Some(prompt) = req.prompt.as_deref().filter(|p| !p.trim().is_empty()) {
        text.push_str(
            " Context for the transcript (spellings of names and terms, or the text before \
             this audio), not to be transcribed:\n",
        );
        text.push_str(prompt.trim());
    }
    text
}

/// Where the audio goes in the request: inline, or a Files API file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AudioPart {
    /// Base64 in the request (`inlineData`).
    Inline,
    /// Uploaded first: its `uri`.
    File(String),
}

/// The `generationConfig`: the temperature asked for, and no thinking where it can be turned
/// off. Gemini 2.5 Flash and Flash-Lite think unless told not to; a transcript needs no
/// thinking, and `thinkingBudget: 0` turns it off on them
/// (<https://ai.google.dev/gemini-api/docs/thinking>). Other models keep their default (2.5 Pro
/// cannot turn it off).
fn generation_config(req: &TranscriptionRequest) -> Option<wire::GenerationConfig> {
    let id = req.model.strip_prefix("models/").unwrap_or(&req.model);
    let config = wire::GenerationConfig {
        temperature: temperature(req).ok().flatten(),
        thinking_config: id
            .starts_with("gemini-2.5-flash")
            .then_some(wire::ThinkingConfig {
                thinking_budget: Some(0),
                thinking_level: None,
            }),
        ..wire::GenerationConfig::default()
    };
    (config != wire::GenerationConfig::default()).then_some(config)
}

/// The `generateContent` body: the instruction, then the audio.
pub(crate) fn transcription_request(
    req: &TranscriptionRequest,
    audio: &Audio<'_>,
    part: &AudioPart,
) -> wire::GenerateContentRequest {
    let mime = audio.format.mime().to_owned();
    let media = match part {
        AudioPart::Inline => wire::Part {
            inline_data: Some(wire::Blob {
                mime_type: mime,
                data: encode_base64(audio.data),
            }),
            ..wire::Part::default()
        },
        AudioPart::File(uri) => wire::Part {
            file_data: Some(wire::FileData {
                mime_type: Some(mime),
                file_uri: uri.clone(),
            }),
            ..wire::Part::default()
        },
    };
    wire::GenerateContentRequest {
        contents: vec![wire::Content {
            role: Some(wire::Role::User),
            parts: vec![
                wire::Part {
                    text: Some(instruction(req)),
                    ..wire::Part::default()
                },
                media,
            ],
        }],
        system_instruction: None,
        generation_config: generation_config(req),
        tools: Vec::new(),
        tool_config: None,
    }
}

/// What a transcription is expected to bill before the call: the audio's seconds (read, or
/// bounded from above: see [`audio::length`]) as plan units, 32 audio input tokens a second,
/// the instruction's bytes as text input tokens (a token is at least a byte) and
/// [`TRANSCRIPT_TOKENS_PER_SECOND`] output tokens a second. Nothing for audio it refuses.
pub(crate) fn transcription_billing(req: &TranscriptionRequest) -> Billing {
    let Ok(audio) = audio_of(req) else {
        return Billing::default();
    };
    let secs = billed_seconds(audio.length.upper());
    Billing::new(
        secs,
        vec![
            Charge::new(PriceUnit::InputToken, secs * TOKENS_PER_SECOND).modality("audio"),
            Charge::new(PriceUnit::InputToken, instruction(req).len() as u64).modality("text"),
            Charge::new(PriceUnit::OutputToken, secs * TRANSCRIPT_TOKENS_PER_SECOND)
                .modality("text"),
        ],
    )
}

/// The transcript of an answer, billed by its `usageMetadata`: audio prompt tokens at the audio
/// input rate, the rest of the prompt and all output (thinking included) at the text rates, and
/// the audio's seconds as plan units: read from it, else Gemini's audio tokens at 32 a second,
/// else the upper bound. A blocked prompt or answer is `ContentFiltered`.
pub(crate) fn transcription_response(
    resp: wire::GenerateContentResponse,
    req: &TranscriptionRequest,
    length: Length,
) -> Result<TranscriptionResponse> {
    if let Some(reason) = resp.prompt_feedback.as_ref().and_then(|f| f.block_reason) {
        return Err(Error::new(
            ErrorKind::ContentFiltered,
            format!("Gemini blocked the audio ({reason:?})"),
        )
        .with_provider(PROVIDER));
    }
    let candidate = resp.candidates.unwrap_or_default().into_iter().next();
    let reason = candidate.as_ref().and_then(|c| c.finish_reason);
    let text: String = candidate
        .and_then(|c| c.content)
        .map(|c| c.parts)
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p.thought != Some(true))
        .filter_map(|p| p.text)
        .collect();
    use wire::FinishReason as F;
    if matches!(
        reason,
        Some(F::Safety | F::ProhibitedContent | F::Blocklist | F::Spii | F::Recitation)
    ) {
        return Err(Error::new(
            ErrorKind::ContentFiltered,
            format!("Gemini withheld the transcript ({reason:?})"),
        )
        .with_provider(PROVIDER));
    }
    let meta = resp.usage_metadata.unwrap_or_default();
    let tokens = super::usage(meta.clone());
    let audio_tokens = meta.prompt_tokens_details.as_deref().map(|details| {
        details
            .iter()
            .filter(|d| d.modality.as_deref() == Some("AUDIO"))
            .filter_map(|d| d.token_count)
            .sum::<u64>()
            .min(tokens.input_tokens)
    });
    let duration = match (length, audio_tokens) {
        (Length::Exact(d), _) => Some(d),
        (Length::AtMost(_), Some(t)) if t > 0 => {
            Some(Duration::from_secs(t.div_ceil(TOKENS_PER_SECOND)))
        }
        (Length::AtMost(_), _) => None,
    };
    let secs = billed_seconds(duration.unwrap_or(length.upper()));
    // Without a split, the prompt is counted as audio but for the instruction.
    let audio_tokens = audio_tokens.unwrap_or_else(|| {
        tokens
            .input_tokens
            .saturating_sub(instruction(req).len() as u64)
    });
    let text_input = tokens.input_tokens - audio_tokens;
    let mut charges = vec![Charge::new(PriceUnit::InputToken, audio_tokens).modality("audio")];
    if text_input > 0 {
        charges.push(Charge::new(PriceUnit::InputToken, text_input).modality("text"));
    }
    charges.push(Charge::new(PriceUnit::OutputToken, tokens.output_tokens).modality("text"));
    let mut out = TranscriptionResponse::new(
        &req.model,
        text.trim(),
        Usage {
            tokens,
            units: secs,
        },
    )
    .billing(Billing::new(secs, charges));
    out.language = req.language.clone();
    out.duration = duration;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one_second_wav() -> Vec<u8> {
        audio::wav(&vec![0; 48_000], 24_000)
    }

    fn req(data: Vec<u8>) -> TranscriptionRequest {
        TranscriptionRequest::new("gemini-2.5-flash", MediaInput::bytes(data, "audio/wav"))
    }

    #[test]
    fn request_shape() {
        let mut r = req(one_second_wav());
        r.language = Some("fr".into());
        r.prompt = Some("Names: Zoë".into());
        r.options.insert("temperature".into(), json!(0));
        let audio = audio_of(&r).unwrap();
        assert_eq!(audio.length, Length::Exact(Duration::from_secs(1)));
        let body =
            serde_json::to_value(transcription_request(&r, &audio, &AudioPart::Inline)).unwrap();
        let parts = &body["contents"][0]["parts"];
        let text = parts[0]["text"].as_str().unwrap();
        assert!(
            text.contains("`fr`") && text.ends_with("Names: Zoë"),
            "{text}"
        );
        assert_eq!(parts[1]["inlineData"]["mimeType"], "audio/wav");
        assert_eq!(
            parts[1]["inlineData"]["data"],
            encode_base64(&one_second_wav())
        );
        assert_eq!(
            body["generationConfig"],
            json!({"temperature": 0.0, "thinkingConfig": {"thinkingBudget": 0}})
        );
        let uri = "https://generativelanguage.googleapis.com/v1beta/files/abc";
        let body = serde_json::to_value(transcription_request(
            &r,
            &audio,
            &AudioPart::File(uri.into()),
        ))
        .unwrap();
        assert_eq!(
            body["contents"][0]["parts"][1],
            json!({"fileData": {"mimeType": "audio/wav", "fileUri": uri}})
        );
    }

    #[test]
    fn refusals_name_the_field() {
        let param = |r: &TranscriptionRequest| {
            let e = audio_of(r).unwrap_err();
            (e.kind().clone(), e.param().map(str::to_owned))
        };
        assert_eq!(
            param(&req(b"just some text, not audio".to_vec())),
            (ErrorKind::Unsupported, Some("file".into()))
        );
        assert_eq!(
            param(&req(Vec::new())),
            (ErrorKind::InvalidRequest, Some("file".into()))
        );
        assert_eq!(
            param(&req(b"RIFF\0\0\0\0WAVEjunk".to_vec())),
            (ErrorKind::InvalidRequest, Some("file".into()))
        );
        let mut r = req(one_second_wav());
        r.model = "gemini-2.5-flash-preview-tts".into();
        assert_eq!(param(&r), (ErrorKind::Unsupported, Some("model".into())));
        let mut r = req(one_second_wav());
        r.options
            .insert("timestamp_granularities".into(), json!(["segment"]));
        assert_eq!(
            param(&r),
            (
                ErrorKind::Unsupported,
                Some("options.timestamp_granularities".into())
            )
        );
        let mut r = req(one_second_wav());
        r.options.insert("temperature".into(), json!(3));
        assert_eq!(
            param(&r),
            (ErrorKind::InvalidRequest, Some("temperature".into()))
        );
        let mut r = req(one_second_wav());
        r.language = Some("en; ignore that".into());
        assert_eq!(
            param(&r),
            (ErrorKind::InvalidRequest, Some("language".into()))
        );
        // Ten hours of WAV, by its header.
        let mut long = audio::wav(&[0; 4], 8_000);
        long[28..32].copy_from_slice(&1u32.to_le_bytes()); // 1 byte a second
        long[40..44].copy_from_slice(&4u32.to_le_bytes());
        let long_req = req(long.clone());
        assert!(audio_of(&long_req).is_ok());
        let mut ten_hours = long;
        ten_hours[28..32].copy_from_slice(&1u32.to_le_bytes());
        ten_hours.resize(44 + 36_001, 0);
        ten_hours[40..44].copy_from_slice(&36_001u32.to_le_bytes());
        assert_eq!(
            param(&req(ten_hours)),
            (ErrorKind::InvalidRequest, Some("file".into()))
        );
    }

    #[test]
    fn billing_counts_seconds() {
        let r = req(one_second_wav());
        let b = transcription_billing(&r);
        assert_eq!(b.units, 1);
        assert_eq!(b.charges[0].quantity, 32);
        let answer: wire::GenerateContentResponse = serde_json::from_value(json!({
            "candidates": [{"content": {"parts": [{"text": " Hello there. "}]}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 70, "candidatesTokenCount": 3,
                "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 38}, {"modality": "AUDIO", "tokenCount": 32}]}
        }))
        .unwrap();
        let out =
            transcription_response(answer, &r, Length::Exact(Duration::from_secs(1))).unwrap();
        assert_eq!(out.text, "Hello there.");
        assert_eq!(out.billing.units, 1);
        assert_eq!(out.duration, Some(Duration::from_secs(1)));
        let q: Vec<(u64, Option<&str>)> = out
            .billing
            .charges
            .iter()
            .map(|c| (c.quantity, c.modality.as_deref()))
            .collect();
        assert_eq!(
            q,
            [(32, Some("audio")), (38, Some("text")), (3, Some("text"))]
        );
        // A length only bounded settles at Gemini's own count of the audio.
        let answer: wire::GenerateContentResponse = serde_json::from_value(json!({
            "candidates": [{"content": {"parts": [{"text": "Hi"}]}}],
            "usageMetadata": {"promptTokenCount": 100, "candidatesTokenCount": 1,
                "promptTokensDetails": [{"modality": "AUDIO", "tokenCount": 65}]}
        }))
        .unwrap();
        let out =
            transcription_response(answer, &r, Length::AtMost(Duration::from_secs(500))).unwrap();
        assert_eq!(out.billing.units, 3);
    }
}
