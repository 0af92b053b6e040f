//! Pure mapping between the gateway's speech types and `generateContent` on Gemini's
//! text-to-speech models (<https://ai.google.dev/gemini-api/docs/speech-generation>). No IO.
//!
//! Gemini answers raw PCM (16-bit signed little-endian, mono, 24 kHz, typed
//! `audio/L16;codec=pcm;rate=24000`); the gateway gives it as `wav` (the default: the PCM in a
//! 44-byte RIFF header) or as `pcm` (the bytes as they came). It has no audio encoder, so the
//! compressed formats (`mp3`, `opus`, `aac`, `flac`) are refused before any call.

use std::time::Duration;

use bytes::Bytes;
use gateway_core::{
    Billing, Charge, Error, ErrorKind, PriceUnit, Result, SpeechRequest, SpeechResponse, Usage,
    decode_base64,
};
use serde_json::Value;

use super::audio::{billed_seconds, pcm_rate, wav};
use crate::PROVIDER;
use crate::wire;

/// The prebuilt voices of the text-to-speech models, as the speech generation guide lists them
/// (<https://ai.google.dev/gemini-api/docs/speech-generation#voices>).
pub(crate) const VOICES: [&str; 30] = [
    "Zephyr",
    "Puck",
    "Charon",
    "Kore",
    "Fenrir",
    "Leda",
    "Orus",
    "Aoede",
    "Callirrhoe",
    "Autonoe",
    "Enceladus",
    "Iapetus",
    "Umbriel",
    "Algieba",
    "Despina",
    "Erinome",
    "Algenib",
    "Rasalgethi",
    "Laomedeia",
    "Achernar",
    "Alnilam",
    "Schedar",
    "Gacrux",
    "Pulcherrima",
    "Achird",
    "Zubenelgenubi",
    "Vindemiatrix",
    "Sadachbia",
    "Sadaltager",
    "Sulafat",
];

/// The voice used when the request names none: the one in every example of the guide.
pub(crate) const DEFAULT_VOICE: &str = "Kore";

/// OpenAI's voice names, which are not Gemini's: refused with a pointer to Gemini's list rather
/// than mapped onto voices nobody chose.
const OPENAI_VOICES: [&str; 13] = [
    "alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer", "verse",
    "marin", "cedar",
];

/// The options a speech request takes: `instructions`, the style the text is read in, which
/// Gemini takes as words before the text ("Say cheerfully: Have a wonderful day!", the guide's
/// own example of controlling style with a prompt).
const OPTIONS: [&str; 1] = ["instructions"];

/// Gemini represents a second of audio as 32 tokens
/// (<https://ai.google.dev/gemini-api/docs/audio>, "Technical details about audio").
pub(crate) const TOKENS_PER_SECOND: u64 = 32;

/// The slowest reading the estimate allows for: 5 characters a second, about 50 words a minute,
/// half the rate of slow conversational speech (about 100 words a minute), so that an
/// estimate made before the call does not fall short of the audio the call produces.
const SLOW_CHARS_PER_SECOND: u64 = 5;

/// The most output tokens of the documented TTS models, 16,384
/// (<https://ai.google.dev/gemini-api/docs/models>, `gemini-2.5-flash-preview-tts` and
/// `gemini-2.5-pro-preview-tts`: "Output token limit"): no answer is longer than 512 seconds.
const TTS_OUTPUT_TOKENS: u64 = 16_384;

/// The two output forms the gateway gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Output {
    /// The PCM in a WAV header (`audio/wav`).
    Wav,
    /// The PCM as it came.
    Pcm,
}

/// Whether `model` is a text-to-speech model: every Gemini TTS id ends in `-tts`
/// (`gemini-2.5-flash-preview-tts`, `gemini-2.5-pro-preview-tts`).
pub(crate) fn is_tts(model: &str) -> bool {
    let id = model.strip_prefix("models/").unwrap_or(model);
    id.starts_with("gemini-") && id.ends_with("-tts")
}

fn unsupported(message: impl Into<String>) -> Error {
    Error::unsupported(message).with_provider(PROVIDER)
}

fn invalid(message: impl Into<String>) -> Error {
    Error::invalid_request(message).with_provider(PROVIDER)
}

/// The voice of `req`, by its documented spelling (names match whatever their case).
fn voice(req: &SpeechRequest) -> Result<&'static str> {
    let Some(asked) = req.voice.as_deref().map(str::trim) else {
        return Ok(DEFAULT_VOICE);
    };
    if let Some(v) = VOICES.iter().find(|v| v.eq_ignore_ascii_case(asked)) {
        return Ok(v);
    }
    let hint = if OPENAI_VOICES.contains(&asked.to_ascii_lowercase().as_str()) {
        format!("`{asked}` is one of OpenAI's voices, not Gemini's; ")
    } else {
        String::new()
    };
    Err(unsupported(format!(
        "{hint}Gemini has no voice `{asked}`: its voices are {} (default {DEFAULT_VOICE})",
        VOICES.join(", ")
    ))
    .with_param("voice"))
}

/// The output form of `req`.
fn output(req: &SpeechRequest) -> Result<Output> {
    match req.format.as_deref().map(str::trim) {
        None | Some("wav") => Ok(Output::Wav),
        Some("pcm") => Ok(Output::Pcm),
        Some(other) => Err(unsupported(format!(
            "Gemini speaks raw PCM, which the gateway gives as `wav` or `pcm`; it has no encoder \
             for `{other}`"
        ))
        .with_param("response_format")),
    }
}

/// The style words of `options.instructions`, if any.
fn instructions(req: &SpeechRequest) -> Result<Option<&str>> {
    for name in req.options.keys() {
        if !OPTIONS.contains(&name.as_str()) {
            return Err(unsupported(format!(
                "Gemini's speech takes no option `{name}` (it takes: {})",
                OPTIONS.join(", ")
            ))
            .with_param(format!("options.{name}")));
        }
    }
    match req.options.get("instructions") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim())),
        Some(_) => Err(invalid("`instructions` must be a string").with_param("instructions")),
    }
}

/// Refuses, naming the field, what Gemini's speech cannot do; no IO.
pub(crate) fn check_speech(req: &SpeechRequest) -> Result<()> {
    speech_request(req).map(drop)
}

/// The `generateContent` body of `req`, and the form its audio is given in.
pub(crate) fn speech_request(
    req: &SpeechRequest,
) -> Result<(wire::SpeechGenerateContentRequest, Output)> {
    if !is_tts(&req.model) {
        return Err(unsupported(format!(
            "`{}` is not a Gemini text-to-speech model (their ids end in `-tts`, e.g. \
             gemini-2.5-flash-preview-tts)",
            req.model
        ))
        .with_param("model"));
    }
    if req.input.trim().is_empty() {
        return Err(invalid("there is no text to speak").with_param("input"));
    }
    // Gemini has no speed setting; a speed other than normal is refused rather than ignored.
    if let Some(speed) = req.speed
        && (speed - 1.0).abs() > 1e-9
    {
        return Err(unsupported(format!(
            "Gemini's speech has no speed setting: `speed` must be 1.0, not {speed}"
        ))
        .with_param("speed"));
    }
    let voice = voice(req)?;
    let output = output(req)?;
    let text = match instructions(req)? {
        Some(style) => format!("{style}: {}", req.input),
        None => req.input.clone(),
    };
    let body = wire::SpeechGenerateContentRequest {
        contents: vec![wire::Content {
            role: Some(wire::Role::User),
            parts: vec![wire::Part {
                text: Some(text),
                ..wire::Part::default()
            }],
        }],
        generation_config: wire::SpeechGenerationConfig {
            response_modalities: vec!["AUDIO"],
            speech_config: wire::SpeechConfig {
                voice_config: wire::VoiceConfig {
                    prebuilt_voice_config: wire::PrebuiltVoiceConfig {
                        voice_name: voice.to_owned(),
                    },
                },
            },
        },
    };
    Ok((body, output))
}

/// The seconds of audio `req` may produce, at most: its characters read at
/// [`SLOW_CHARS_PER_SECOND`], within the documented models' output limit.
fn estimated_seconds(req: &SpeechRequest) -> u64 {
    let chars = req.input.chars().count() as u64;
    let secs = chars.div_ceil(SLOW_CHARS_PER_SECOND).max(1);
    let id = req.model.strip_prefix("models/").unwrap_or(&req.model);
    if matches!(
        id,
        "gemini-2.5-flash-preview-tts" | "gemini-2.5-pro-preview-tts"
    ) {
        secs.min(TTS_OUTPUT_TOKENS / TOKENS_PER_SECOND)
    } else {
        secs
    }
}

/// What a speech request is expected to bill before the call: its seconds of audio as plan
/// units (at the slow rate of [`SLOW_CHARS_PER_SECOND`]), the prompt's bytes as text input
/// tokens (a token is at least a byte, so never fewer) and 32 audio output tokens a second.
pub(crate) fn speech_billing(req: &SpeechRequest) -> Billing {
    let secs = estimated_seconds(req);
    let prompt = match instructions(req) {
        Ok(Some(style)) => style.len() + 2 + req.input.len(),
        _ => req.input.len(),
    };
    Billing::new(
        secs,
        vec![
            Charge::new(PriceUnit::InputToken, prompt as u64).modality("text"),
            Charge::new(PriceUnit::OutputToken, secs * TOKENS_PER_SECOND).modality("audio"),
        ],
    )
}

/// Whether a finish reason is a safety or policy block.
fn blocked(reason: Option<wire::FinishReason>) -> bool {
    use wire::FinishReason as F;
    matches!(
        reason,
        Some(F::Safety | F::ProhibitedContent | F::Blocklist | F::Spii | F::Recitation)
    )
}

/// The audio of a TTS answer, in the form asked for, billed by its `usageMetadata`: the prompt
/// as text input tokens, the audio tokens at the audio output rate (any other output at the
/// text rate), and its seconds of audio as plan units. A blocked prompt or a candidate blocked
/// for safety without audio is `ContentFiltered`.
pub(crate) fn speech_response(
    resp: wire::GenerateContentResponse,
    model: &str,
    output: Output,
) -> Result<SpeechResponse> {
    if let Some(reason) = resp.prompt_feedback.as_ref().and_then(|f| f.block_reason) {
        return Err(Error::new(
            ErrorKind::ContentFiltered,
            format!("Gemini blocked the text ({reason:?})"),
        )
        .with_provider(PROVIDER));
    }
    let mut pcm = Vec::new();
    let mut rate = None;
    let mut reasons = Vec::new();
    for candidate in resp.candidates.unwrap_or_default() {
        reasons.push(candidate.finish_reason);
        for part in candidate.content.map(|c| c.parts).unwrap_or_default() {
            let Some(blob) = part.inline_data else {
                continue;
            };
            if !blob.mime_type.starts_with("audio/") {
                continue;
            }
            let bytes = decode_base64(&blob.data).ok_or_else(|| {
                Error::decode("the audio in Gemini's answer is not valid base64")
                    .with_provider(PROVIDER)
            })?;
            let this = pcm_rate(&blob.mime_type);
            if *rate.get_or_insert(this) != this {
                return Err(
                    Error::decode("Gemini answered audio parts at different sample rates")
                        .with_provider(PROVIDER),
                );
            }
            pcm.extend_from_slice(&bytes);
        }
    }
    let Some(rate) = rate.filter(|_| !pcm.is_empty()) else {
        if let Some(reason) = reasons.iter().copied().find(|r| blocked(*r)) {
            return Err(Error::new(
                ErrorKind::ContentFiltered,
                format!(
                    "Gemini withheld the audio ({:?})",
                    reason.unwrap_or(wire::FinishReason::Safety)
                ),
            )
            .with_provider(PROVIDER));
        }
        return Err(Error::decode(format!(
            "Gemini answered without audio (finish reason {:?})",
            reasons.first().copied().flatten()
        ))
        .with_provider(PROVIDER));
    };
    // 16-bit mono: two bytes a sample.
    let seconds = billed_seconds(Duration::from_secs_f64(
        pcm.len() as f64 / (2.0 * f64::from(rate)),
    ));
    let meta = resp.usage_metadata.unwrap_or_default();
    let tokens = super::usage(meta.clone());
    let audio_tokens = meta
        .candidates_tokens_details
        .as_deref()
        .map(|details| {
            details
                .iter()
                .filter(|d| d.modality.as_deref() == Some("AUDIO"))
                .filter_map(|d| d.token_count)
                .sum::<u64>()
        })
        .unwrap_or_else(|| meta.candidates_token_count.unwrap_or(0))
        .min(tokens.output_tokens);
    let other_tokens = tokens.output_tokens - audio_tokens;
    let mut charges = vec![
        Charge::new(PriceUnit::InputToken, tokens.input_tokens).modality("text"),
        Charge::new(PriceUnit::OutputToken, audio_tokens).modality("audio"),
    ];
    if other_tokens > 0 {
        charges.push(Charge::new(PriceUnit::OutputToken, other_tokens).modality("text"));
    }
    let (audio, mime) = match output {
        Output::Wav => (wav(&pcm, rate), "audio/wav".to_owned()),
        Output::Pcm => (pcm, format!("audio/pcm;rate={rate}")),
    };
    let usage = Usage {
        tokens,
        units: seconds,
    };
    Ok(SpeechResponse::new(model, Bytes::from(audio), mime, usage)
        .billing(Billing::new(seconds, charges)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use gateway_core::encode_base64;
    use serde_json::json;

    fn req(voice: Option<&str>) -> SpeechRequest {
        let mut r = SpeechRequest::new("gemini-2.5-flash-preview-tts", "Have a wonderful day!");
        r.voice = voice.map(str::to_owned);
        r
    }

    #[test]
    fn request_shape_is_the_documented_one() {
        let mut r = req(Some("puck"));
        r.options
            .insert("instructions".into(), json!("Say cheerfully"));
        let (body, output) = speech_request(&r).unwrap();
        assert_eq!(output, Output::Wav);
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            json!({
                "contents": [{"role": "user", "parts": [{"text": "Say cheerfully: Have a wonderful day!"}]}],
                "generationConfig": {
                    "responseModalities": ["AUDIO"],
                    "speechConfig": {"voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Puck"}}}
                }
            })
        );
        let (body, _) = speech_request(&req(None)).unwrap();
        assert_eq!(
            body.generation_config
                .speech_config
                .voice_config
                .prebuilt_voice_config
                .voice_name,
            DEFAULT_VOICE
        );
    }

    #[test]
    fn refusals_name_the_field() {
        let param = |r: &SpeechRequest| {
            let e = check_speech(r).unwrap_err();
            (e.kind().clone(), e.param().map(str::to_owned))
        };
        let unsupported = |p: &str| (ErrorKind::Unsupported, Some(p.to_owned()));
        assert_eq!(param(&req(Some("alloy"))), unsupported("voice"));
        assert_eq!(param(&req(Some("Nobody"))), unsupported("voice"));
        let e = check_speech(&req(Some("alloy"))).unwrap_err();
        assert!(e.message().contains("OpenAI"), "{e}");
        for format in ["mp3", "opus", "aac", "flac"] {
            let mut r = req(None);
            r.format = Some(format.into());
            assert_eq!(param(&r), unsupported("response_format"));
        }
        let mut r = req(None);
        r.format = Some("pcm".into());
        assert_eq!(speech_request(&r).unwrap().1, Output::Pcm);
        let mut r = req(None);
        r.speed = Some(1.5);
        assert_eq!(param(&r), unsupported("speed"));
        r.speed = Some(1.0);
        assert!(check_speech(&r).is_ok());
        let mut r = req(None);
        r.model = "gemini-2.5-flash".into();
        assert_eq!(param(&r), unsupported("model"));
        let mut r = req(None);
        r.options.insert("pitch".into(), json!(2));
        assert_eq!(param(&r), unsupported("options.pitch"));
        let mut r = req(None);
        r.input = "  ".into();
        assert_eq!(
            param(&r),
            (ErrorKind::InvalidRequest, Some("input".to_owned()))
        );
    }

    #[test]
    fn the_estimate_does_not_undercount() {
        // 21 characters at 5 a second: 5 seconds, 160 audio tokens.
        let b = speech_billing(&req(None));
        assert_eq!(b.units, 5);
        assert_eq!(b.charges[0].quantity, 21);
        assert_eq!(b.charges[1].quantity, 160);
        // Ordinary speech (about 15 characters a second) is well within it.
        assert!(b.units * 15 >= 21);
        // Bounded by the 16,384 output tokens of the documented models.
        let long = SpeechRequest::new("gemini-2.5-pro-preview-tts", "a".repeat(100_000));
        assert_eq!(speech_billing(&long).units, 512);
    }

    fn answer(pcm: &[u8]) -> wire::GenerateContentResponse {
        serde_json::from_value(json!({
            "candidates": [{"content": {"role": "model", "parts": [
                {"inlineData": {"mimeType": "audio/L16;codec=pcm;rate=24000", "data": encode_base64(pcm)}}
            ]}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 48, "totalTokenCount": 57,
                "candidatesTokensDetails": [{"modality": "AUDIO", "tokenCount": 48}]}
        }))
        .unwrap()
    }

    #[test]
    fn the_answer_is_wrapped_and_billed() {
        let pcm = vec![7u8; 72_000]; // 1.5 seconds
        let r = speech_response(answer(&pcm), "m", Output::Wav).unwrap();
        assert_eq!(r.mime, "audio/wav");
        assert_eq!(&r.audio[..], &wav(&pcm, 24_000)[..]);
        assert_eq!(r.billing.units, 2);
        assert_eq!(r.usage.units, 2);
        assert_eq!(r.billing.charges.len(), 2);
        assert_eq!(r.billing.charges[0].quantity, 9);
        assert_eq!(r.billing.charges[1].quantity, 48);
        assert_eq!(r.billing.charges[1].modality.as_deref(), Some("audio"));
        let r = speech_response(answer(&pcm), "m", Output::Pcm).unwrap();
        assert_eq!(r.mime, "audio/pcm;rate=24000");
        assert_eq!(&r.audio[..], &pcm[..]);
    }

    #[test]
    fn no_audio_is_an_error() {
        let safety: wire::GenerateContentResponse = serde_json::from_value(json!({
            "candidates": [{"finishReason": "SAFETY"}]
        }))
        .unwrap();
        let e = speech_response(safety, "m", Output::Wav).unwrap_err();
        assert_eq!(e.kind(), &ErrorKind::ContentFiltered);
        let text: wire::GenerateContentResponse = serde_json::from_value(json!({
            "candidates": [{"content": {"parts": [{"text": "hello"}]}, "finishReason": "STOP"}]
        }))
        .unwrap();
        let e = speech_response(text, "m", Output::Wav).unwrap_err();
        assert_eq!(e.kind(), &ErrorKind::Decode);
    }
}
