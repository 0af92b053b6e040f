//! [`SpeechModel`] on WaveSpeed's tasks: MiniMax Speech-02 (HD and Turbo), run to their end and
//! their audio downloaded.
//!
//! The fields are those of the model pages
//! (<https://wavespeed.ai/docs/docs-api/minimax/minimax-speech-02-hd>,
//! <https://wavespeed.ai/docs-api/minimax-speech-02-turbo>): `text`, `voice_id` (required: a
//! system voice or a cloned one), `speed` 0.5-2.0, `volume` 0.1-10, `pitch`, `emotion`,
//! `english_normalization`, `sample_rate`, `bitrate`, `channel`, `format`, `language_boost`,
//! `enable_sync_mode`. The task's output is a URL to the audio; no base64 output is documented.

use gateway_core::http::UrlOrigin;
use gateway_core::{
    Billing, Error, Result, SpeechModel, SpeechRequest, SpeechResponse, Usage,
    per_character_billing,
};
use serde_json::{Map, Value, json};

use crate::convert::{self, Output};
use crate::job::valid_model_path;
use crate::{PROVIDER, WaveSpeedClient};

/// One speech model of WaveSpeed's catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SpeechSpec {
    pub id: &'static str,
    /// The most characters of `text` one task takes.
    pub max_chars: usize,
    /// The `format` values it writes.
    pub formats: &'static [&'static str],
    /// Documents `enable_sync_mode`.
    pub sync: bool,
}

/// MiniMax's output formats on WaveSpeed ("MP3/WAV/PCM/FLAC" on the HD page).
const MINIMAX_FORMATS: &[&str] = &["mp3", "wav", "pcm", "flac"];

/// The speech models, from their documentation.
pub(crate) const SPEECH_MODELS: &[SpeechSpec] = &[
    // https://wavespeed.ai/docs/docs-api/minimax/minimax-speech-02-hd: "Maximum 10000
    // characters", the request example sets `enable_sync_mode`; $0.05 per 1000 characters.
    SpeechSpec {
        id: "minimax/speech-02-hd",
        max_chars: 10_000,
        formats: MINIMAX_FORMATS,
        sync: true,
    },
    // https://wavespeed.ai/docs-api/minimax-speech-02-turbo: "Maximum 5000 characters"; $0.03
    // per 1000 characters. Its page shows no `enable_sync_mode`.
    SpeechSpec {
        id: "minimax/speech-02-turbo",
        max_chars: 5_000,
        formats: MINIMAX_FORMATS,
        sync: false,
    },
];

/// Whether `id` is a speech model of the table (for announcing configured models).
pub(crate) fn is_speech_model(id: &str) -> bool {
    SPEECH_MODELS.iter().any(|m| m.id == id)
}

/// The system voices the model pages list; a voice cloned on WaveSpeed
/// (<https://wavespeed.ai/models/minimax/voice-clone>) has an id of the account's choosing, so
/// other ids are passed on as they are.
pub(crate) const SYSTEM_VOICES: [&str; 17] = [
    "Wise_Woman",
    "Friendly_Person",
    "Inspirational_girl",
    "Deep_Voice_Man",
    "Calm_Woman",
    "Casual_Guy",
    "Lively_Girl",
    "Patient_Man",
    "Young_Knight",
    "Determined_Man",
    "Lovely_Girl",
    "Decent_Boy",
    "Imposing_Manner",
    "Elegant_Man",
    "Abbess",
    "Sweet_Girl_2",
    "Exuberant_Girl",
];

/// OpenAI's voice names, which MiniMax does not have: refused before the call rather than
/// failed by the task.
const OPENAI_VOICES: [&str; 13] = [
    "alloy", "ash", "ballad", "cedar", "coral", "echo", "fable", "marin", "nova", "onyx", "sage",
    "shimmer", "verse",
];

/// The emotions WaveSpeed's MiniMax pages offer (the official agent skill,
/// <https://github.com/WaveSpeedAI/agent-skills/blob/4dedf7c7ef7a0169035fe15c1b6aec0677872e0f/skills/wavespeed-minimax-speech-26/SKILL.md>).
const EMOTIONS: [&str; 7] = [
    "happy",
    "sad",
    "angry",
    "fearful",
    "disgusted",
    "surprised",
    "neutral",
];

const SAMPLE_RATES: [u64; 6] = [8000, 16000, 22050, 24000, 32000, 44100];
const BITRATES: [u64; 4] = [32000, 64000, 128000, 256000];

/// The options passed on, beyond the core fields.
const OPTIONS: [&str; 8] = [
    "pitch",
    "volume",
    "emotion",
    "english_normalization",
    "sample_rate",
    "bitrate",
    "channel",
    "language_boost",
];

/// Fields the gateway sets itself.
const RESERVED: [(&str, &str); 6] = [
    ("text", "use `input`"),
    ("voice_id", "use `voice`"),
    ("speed", "use `speed`"),
    ("format", "use `response_format`"),
    (
        "enable_base64_output",
        "the gateway returns the audio itself",
    ),
    (
        "enable_sync_mode",
        "the gateway sets it from its configuration",
    ),
];

fn spec(id: &str) -> Option<&'static SpeechSpec> {
    SPEECH_MODELS.iter().find(|m| m.id == id)
}

fn bad(message: impl Into<String>, param: &str) -> Error {
    Error::invalid_request(message).with_param(param)
}

fn check_option(key: &str, value: &Value) -> Result<()> {
    let param = format!("options.{key}");
    let number = |lo: f64, hi: f64| match value.as_f64() {
        Some(v) if (lo..=hi).contains(&v) => Ok(()),
        _ => Err(bad(
            format!("`{key}` must be a number from {lo} to {hi}"),
            &param,
        )),
    };
    let one_of = |allowed: &[u64]| match value.as_u64() {
        Some(v) if allowed.contains(&v) => Ok(()),
        _ => Err(bad(
            format!(
                "`{key}` must be one of {}",
                allowed
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            &param,
        )),
    };
    match key {
        "pitch" => match value.as_i64() {
            Some(v) if (-12..=12).contains(&v) => Ok(()),
            _ => Err(bad("`pitch` must be a whole number from -12 to 12", &param)),
        },
        "volume" => number(0.1, 10.0),
        "emotion" => match value.as_str() {
            Some(e) if EMOTIONS.contains(&e) => Ok(()),
            _ => Err(bad(
                format!("`emotion` must be one of {}", EMOTIONS.join(", ")),
                &param,
            )),
        },
        "english_normalization" => match value {
            Value::Bool(_) => Ok(()),
            _ => Err(bad("`english_normalization` must be true or false", &param)),
        },
        "sample_rate" => one_of(&SAMPLE_RATES),
        "bitrate" => one_of(&BITRATES),
        _ => Ok(()),
    }
}

/// The `format` for OpenAI's `response_format` (`mp3` when none is asked, OpenAI's default).
fn format_of(req: &SpeechRequest, spec: &SpeechSpec) -> Result<&'static str> {
    let asked = req
        .format
        .as_deref()
        .map(|f| f.trim().to_ascii_lowercase())
        .unwrap_or_else(|| "mp3".into());
    spec.formats
        .iter()
        .find(|f| **f == asked)
        .copied()
        .ok_or_else(|| {
            Error::unsupported(format!(
                "WaveSpeed model `{}` writes {}, not `{}`",
                spec.id,
                spec.formats.join(", "),
                asked.escape_debug()
            ))
            .with_param("response_format")
        })
}

/// Refuses, before any IO and naming the field, speech the model cannot make.
pub(crate) fn check_speech(req: &SpeechRequest) -> Result<()> {
    let model = req.model.as_str();
    if !valid_model_path(model) {
        return Err(bad(
            format!("`{}` is not a WaveSpeed model id", model.escape_debug()),
            "model",
        ));
    }
    let Some(spec) = spec(model) else {
        return Err(Error::unsupported(format!(
            "WaveSpeed model `{model}` is not a speech model the gateway knows (it knows: {})",
            SPEECH_MODELS
                .iter()
                .map(|m| m.id)
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .with_param("model"));
    };
    if req.input.trim().is_empty() {
        return Err(bad("`input` must not be empty", "input"));
    }
    let chars = req.input.chars().count();
    if chars > spec.max_chars {
        return Err(bad(
            format!(
                "WaveSpeed model `{model}` speaks at most {} characters, not {chars}",
                spec.max_chars
            ),
            "input",
        ));
    }
    let voices = SYSTEM_VOICES.join(", ");
    match req.voice.as_deref().map(str::trim) {
        None | Some("") => {
            return Err(bad(
                format!("a `voice` is required: one of {voices}, or a cloned voice's id"),
                "voice",
            ));
        }
        Some(v) if OPENAI_VOICES.contains(&v.to_ascii_lowercase().as_str()) => {
            return Err(Error::unsupported(format!(
                "WaveSpeed model `{model}` has no voice `{v}`: its voices are {voices}, or a \
                 cloned voice's id"
            ))
            .with_param("voice"));
        }
        Some(v)
            if !v
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')) =>
        {
            return Err(bad(
                format!("`{}` is not a voice id", v.escape_debug()),
                "voice",
            ));
        }
        _ => {}
    }
    if let Some(speed) = req.speed
        && !(0.5..=2.0).contains(&speed)
    {
        return Err(Error::unsupported(format!(
            "WaveSpeed model `{model}` speaks at speeds from 0.5 to 2.0, not {speed}"
        ))
        .with_param("speed"));
    }
    format_of(req, spec)?;
    for (key, value) in &req.options {
        if let Some((_, instead)) = RESERVED.iter().find(|(name, _)| name == key) {
            return Err(bad(
                format!("option `{key}` is not passed on: {instead}"),
                &format!("options.{key}"),
            ));
        }
        if !OPTIONS.contains(&key.as_str()) {
            return Err(bad(
                format!(
                    "WaveSpeed model `{model}` has no option `{key}` (its options: {})",
                    OPTIONS.join(", ")
                ),
                &format!("options.{key}"),
            ));
        }
        check_option(key, value)?;
    }
    Ok(())
}

/// The model's input for `req` (checked by [`check_speech`]). OpenAI's `pcm` is 24 kHz, so a
/// `pcm` request without a `sample_rate` asks for 24000.
pub(crate) fn speech_input(req: &SpeechRequest, sync: bool) -> Result<Map<String, Value>> {
    let spec = spec(&req.model).ok_or_else(|| bad("not a speech model", "model"))?;
    let format = format_of(req, spec)?;
    let mut body = Map::new();
    body.insert("text".into(), json!(req.input));
    body.insert(
        "voice_id".into(),
        json!(req.voice.as_deref().unwrap_or_default().trim()),
    );
    if let Some(speed) = req.speed {
        body.insert("speed".into(), json!(speed));
    }
    body.insert("format".into(), json!(format));
    for (key, value) in &req.options {
        body.insert(key.clone(), value.clone());
    }
    if format == "pcm" && !req.options.contains_key("sample_rate") {
        body.insert("sample_rate".into(), json!(24_000));
    }
    if sync && spec.sync {
        body.insert("enable_sync_mode".into(), json!(true));
    }
    Ok(body)
}

/// The MIME type of audio bytes, read from their signature: WAV (`RIFF....WAVE`), MP3 (an
/// `ID3` tag or an MPEG frame sync), FLAC (`fLaC`), Ogg (`OggS`).
pub(crate) fn sniff_audio(data: &[u8]) -> Option<&'static str> {
    if data.len() >= 12 && data.starts_with(b"RIFF") && &data[8..12] == b"WAVE" {
        Some("audio/wav")
    } else if data.starts_with(b"ID3")
        || (data.len() >= 2 && data[0] == 0xff && data[1] & 0xe0 == 0xe0)
    {
        Some("audio/mpeg")
    } else if data.starts_with(b"fLaC") {
        Some("audio/flac")
    } else if data.starts_with(b"OggS") {
        Some("audio/ogg")
    } else {
        None
    }
}

/// The MIME type of the audio: its signature, else `audio/pcm` for raw PCM that was asked for,
/// else an `audio/*` content type the host declared.
fn audio_mime(data: &[u8], format: &str, declared: Option<&str>) -> Result<String> {
    if let Some(sniffed) = sniff_audio(data) {
        return Ok(sniffed.to_owned());
    }
    if format == "pcm" {
        return Ok("audio/pcm".into());
    }
    declared
        .map(|c| {
            c.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|c| c.starts_with("audio/"))
        .ok_or_else(|| Error::decode("the task's output is not audio the gateway recognises"))
}

impl WaveSpeedClient {
    async fn audio(
        &self,
        done: &crate::job::Prediction,
        format: &str,
    ) -> Result<(Vec<u8>, String)> {
        let outputs = convert::outputs(&done.outputs)?;
        let Some(first) = outputs.into_iter().next() else {
            return Err(Error::decode(format!(
                "task `{}` completed without audio",
                done.id
            )));
        };
        let (data, declared) = match first {
            Output::Url(url) => {
                let (data, content_type) = self
                    .downloader
                    .download(&url, UrlOrigin::Provider(PROVIDER))
                    .await?;
                (data.to_vec(), content_type)
            }
            Output::Bytes(data) => (data, None),
        };
        if data.is_empty() {
            return Err(Error::decode(format!(
                "task `{}` gave empty audio",
                done.id
            )));
        }
        let mime = audio_mime(&data, format, declared.as_deref())?;
        Ok((data, mime))
    }
}

impl SpeechModel for WaveSpeedClient {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    fn check_speech(&self, req: &SpeechRequest) -> Result<()> {
        check_speech(req).map_err(|e| e.with_provider(PROVIDER))
    }

    /// Characters of `input`, as WaveSpeed prices MiniMax ("per 1000 characters"; "every
    /// character is 1 token").
    fn speech_billing(&self, req: &SpeechRequest) -> Billing {
        per_character_billing(&req.input)
    }

    async fn speak(&self, req: SpeechRequest) -> Result<SpeechResponse> {
        SpeechModel::check_speech(self, &req)?;
        let input = speech_input(&req, self.sync_mode).map_err(|e| e.with_provider(PROVIDER))?;
        let format = input
            .get("format")
            .and_then(Value::as_str)
            .unwrap_or("mp3")
            .to_owned();
        let done = self.run(&req.model, &input).await?;
        // The task has run (and is billed): a failure to fetch its audio must not run it again.
        let (audio, mime) = self
            .audio(&done, &format)
            .await
            .map_err(|e| e.with_provider(PROVIDER).in_doubt())?;
        let billing = per_character_billing(&req.input);
        Ok(
            SpeechResponse::new(req.model, audio.into(), mime, Usage::units(billing.units))
                .billing(billing),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gateway_core::ErrorKind;

    fn hd(input: &str) -> SpeechRequest {
        let mut r = SpeechRequest::new("minimax/speech-02-hd", input);
        r.voice = Some("Wise_Woman".into());
        r
    }

    fn refused(req: &SpeechRequest) -> (ErrorKind, String) {
        let e = check_speech(req).unwrap_err();
        (e.kind().clone(), e.param().unwrap_or_default().to_owned())
    }

    #[test]
    fn requests_are_checked_naming_the_field() {
        check_speech(&hd("Hello")).unwrap();
        let mut r = hd("Hello");
        r.format = Some("opus".into());
        assert_eq!(
            refused(&r),
            (ErrorKind::Unsupported, "response_format".into())
        );
        r.format = Some("aac".into());
        assert_eq!(
            refused(&r),
            (ErrorKind::Unsupported, "response_format".into())
        );
        let mut r = hd("Hello");
        r.voice = Some("alloy".into());
        assert_eq!(refused(&r), (ErrorKind::Unsupported, "voice".into()));
        r.voice = None;
        assert_eq!(refused(&r), (ErrorKind::InvalidRequest, "voice".into()));
        r.voice = Some("my-cloned_voice.1".into());
        check_speech(&r).unwrap();
        let mut r = hd("Hello");
        r.speed = Some(4.0);
        assert_eq!(refused(&r), (ErrorKind::Unsupported, "speed".into()));
        r.speed = Some(0.5);
        check_speech(&r).unwrap();
        let mut r = hd("Hello");
        r.options.insert("pitch".into(), json!(13));
        assert_eq!(
            refused(&r),
            (ErrorKind::InvalidRequest, "options.pitch".into())
        );
        r.options.insert("pitch".into(), json!(-3));
        r.options.insert("emotion".into(), json!("sad"));
        r.options.insert("sample_rate".into(), json!(44100));
        check_speech(&r).unwrap();
        r.options.insert("sample_rate".into(), json!(48000));
        assert_eq!(
            refused(&r),
            (ErrorKind::InvalidRequest, "options.sample_rate".into())
        );
        let mut r = hd("Hello");
        r.options.insert("voice_id".into(), json!("x"));
        assert_eq!(
            refused(&r),
            (ErrorKind::InvalidRequest, "options.voice_id".into())
        );
        let mut r = hd("Hello");
        r.options.insert("style".into(), json!("x"));
        assert_eq!(
            refused(&r),
            (ErrorKind::InvalidRequest, "options.style".into())
        );
        assert_eq!(
            refused(&hd("")),
            (ErrorKind::InvalidRequest, "input".into())
        );
        let mut r = hd(&"a".repeat(5_001));
        check_speech(&r).unwrap();
        r.model = "minimax/speech-02-turbo".into();
        assert_eq!(refused(&r), (ErrorKind::InvalidRequest, "input".into()));
        r.model = "someone/other-tts".into();
        assert_eq!(refused(&r), (ErrorKind::Unsupported, "model".into()));
    }

    #[test]
    fn the_input_maps_openai_fields_to_minimax_ones() {
        let mut r = hd("Hello");
        r.speed = Some(1.25);
        r.format = Some("WAV".into());
        r.options.insert("emotion".into(), json!("happy"));
        assert_eq!(
            Value::Object(speech_input(&r, true).unwrap()),
            json!({"text": "Hello", "voice_id": "Wise_Woman", "speed": 1.25, "format": "wav",
                   "emotion": "happy", "enable_sync_mode": true})
        );
        let mut r = hd("Hello");
        r.model = "minimax/speech-02-turbo".into();
        r.format = Some("pcm".into());
        assert_eq!(
            Value::Object(speech_input(&r, true).unwrap()),
            json!({"text": "Hello", "voice_id": "Wise_Woman", "format": "pcm",
                   "sample_rate": 24000})
        );
    }

    #[test]
    fn audio_is_recognised_by_its_signature() {
        assert_eq!(sniff_audio(b"RIFF\x24\0\0\0WAVEfmt "), Some("audio/wav"));
        assert_eq!(sniff_audio(b"ID3\x04\0\0\0\0"), Some("audio/mpeg"));
        assert_eq!(sniff_audio(&[0xff, 0xfb, 0x90, 0x64]), Some("audio/mpeg"));
        assert_eq!(sniff_audio(b"fLaC\0\0\0\x22"), Some("audio/flac"));
        assert_eq!(sniff_audio(b"OggS\0\x02"), Some("audio/ogg"));
        assert_eq!(sniff_audio(b"<html>"), None);
        assert_eq!(audio_mime(&[1, 2, 3, 4], "pcm", None).unwrap(), "audio/pcm");
        assert_eq!(
            audio_mime(&[1, 2, 3, 4], "mp3", Some("audio/mpeg; x=1")).unwrap(),
            "audio/mpeg"
        );
        assert_eq!(
            audio_mime(b"<html>", "mp3", Some("text/html"))
                .unwrap_err()
                .kind(),
            &ErrorKind::Decode
        );
    }

    #[test]
    fn the_tables_are_consistent() {
        for m in SPEECH_MODELS {
            assert!(valid_model_path(m.id) && m.max_chars > 0 && !m.formats.is_empty());
            assert!(is_speech_model(m.id));
        }
        assert!(!is_speech_model("wavespeed-ai/flux-dev"));
    }
}
