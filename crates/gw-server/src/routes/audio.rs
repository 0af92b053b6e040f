//! `POST /v1/audio/speech` and `POST /v1/audio/transcriptions`: OpenAI's audio API
//! (<https://platform.openai.com/docs/api-reference/audio>) over every provider that speaks or
//! listens, through the same router as chat (plans, fallbacks, retries, usage).
//!
//! Gateway extensions: `fallbacks` and `options` (provider-specific fields, checked by the
//! provider). OpenAI's fields that only some providers share (speech `instructions`,
//! transcription `temperature`, `timestamp_granularities[]`) go into `options` under their own
//! names, so a provider that takes one uses it and the others refuse it by name.

use std::fmt::Write as _;
use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Multipart, State};
use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use llm_gateway::{
    MediaInput, Metered, Segment, SpeechRequest, TranscriptionRequest, TranscriptionResponse,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::upload::{bad_form, merge_options};
use super::{JsonBody, call_context, model_error, set_cache, set_cost, set_route};
use crate::app::{AppState, Caller, RequestContext};
use crate::error::ApiError;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/audio/speech", post(speech))
        .route("/v1/audio/transcriptions", post(transcriptions))
}

/// The body of a speech request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SpeechBody {
    model: String,
    input: String,
    /// A voice name, or OpenAI's `{"id": ...}` form.
    #[serde(default)]
    voice: Option<Value>,
    #[serde(default)]
    response_format: Option<String>,
    #[serde(default)]
    speed: Option<f64>,
    #[serde(default)]
    instructions: Option<String>,
    /// `audio` (the default) or `sse`; only `audio` is served.
    #[serde(default)]
    stream_format: Option<String>,
    #[serde(default)]
    fallbacks: Vec<String>,
    #[serde(default)]
    options: Map<String, Value>,
}

impl SpeechBody {
    fn to_core(&self) -> Result<SpeechRequest, ApiError> {
        if self.model.trim().is_empty() {
            return Err(ApiError::invalid(
                Some("model".into()),
                "`model` must not be empty",
            ));
        }
        if self.input.trim().is_empty() {
            return Err(ApiError::invalid(
                Some("input".into()),
                "`input` must not be empty",
            ));
        }
        if self.stream_format.as_deref().is_some_and(|f| f != "audio") {
            return Err(ApiError::invalid(
                Some("stream_format".into()),
                "only `stream_format: \"audio\"` is served: the audio comes back whole",
            ));
        }
        if let Some(speed) = self.speed
            && !(0.25..=4.0).contains(&speed)
        {
            return Err(ApiError::invalid(
                Some("speed".into()),
                "`speed` must be from 0.25 to 4.0",
            ));
        }
        let mut req = SpeechRequest::new(self.model.clone(), self.input.clone());
        req.voice = match &self.voice {
            None => None,
            Some(Value::String(v)) => Some(v.clone()),
            Some(Value::Object(o)) => match o.get("id") {
                Some(Value::String(v)) => Some(v.clone()),
                _ => return Err(voice_error()),
            },
            Some(_) => return Err(voice_error()),
        };
        req.format = self.response_format.clone();
        req.speed = self.speed;
        req.options = self.options.clone();
        if let Some(instructions) = &self.instructions {
            req.options
                .insert("instructions".into(), Value::String(instructions.clone()));
        }
        Ok(req)
    }
}

fn voice_error() -> ApiError {
    ApiError::invalid(
        Some("voice".into()),
        "`voice` must be a voice name or {\"id\": \"<voice>\"}",
    )
}

async fn speech(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Result<JsonBody<SpeechBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let JsonBody(body) = body.map_err(ApiError::from_json)?;
    let req = body.to_core()?;
    let call = call_context(&ctx, caller, &headers, &body.fallbacks)?;
    let Metered {
        value: answer,
        route,
        cost,
        cache,
        ..
    } = state
        .gateway()
        .speak_with(&call, req)
        .await
        .map_err(|e| model_error(&state, &body.model, e))?;
    let mut response = ([(CONTENT_TYPE, answer.mime)], answer.audio).into_response();
    set_cost(&mut response, cost);
    set_route(&mut response, &route);
    set_cache(&mut response, &cache);
    Ok(response)
}

/// How a transcript is written back: OpenAI's `response_format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TranscriptFormat {
    Json,
    Text,
    VerboseJson,
    Srt,
    Vtt,
}

impl TranscriptFormat {
    fn parse(name: &str) -> Result<Self, ApiError> {
        Ok(match name {
            "json" => Self::Json,
            "text" => Self::Text,
            "verbose_json" => Self::VerboseJson,
            "srt" => Self::Srt,
            "vtt" => Self::Vtt,
            other => {
                return Err(ApiError::invalid(
                    Some("response_format".into()),
                    format!(
                        "`response_format` must be json, text, verbose_json, srt or vtt, not \
                         `{other}`"
                    ),
                ));
            }
        })
    }
}

/// A transcription as the multipart form carries it.
#[derive(Debug, Default)]
struct TranscriptionForm {
    model: String,
    file: Option<MediaInput>,
    language: Option<String>,
    prompt: Option<String>,
    response_format: Option<String>,
    fallbacks: Vec<String>,
    options: Map<String, Value>,
}

impl TranscriptionForm {
    async fn read(mut form: Multipart) -> Result<Self, ApiError> {
        let mut out = Self::default();
        while let Some(field) = form.next_field().await.map_err(bad_form)? {
            let name = field.name().unwrap_or_default().to_owned();
            if name == "file" {
                let declared = field
                    .content_type()
                    .map(str::to_owned)
                    .or_else(|| {
                        field
                            .file_name()
                            .and_then(mime_from_name)
                            .map(str::to_owned)
                    })
                    .unwrap_or_else(|| "application/octet-stream".to_owned());
                let data = field.bytes().await.map_err(bad_form)?;
                out.file = Some(MediaInput::bytes(data, declared));
                continue;
            }
            let text = field.text().await.map_err(bad_form)?;
            out.set(&name, text)?;
        }
        Ok(out)
    }

    fn set(&mut self, name: &str, text: String) -> Result<(), ApiError> {
        match name {
            "model" => self.model = text,
            "language" => self.language = Some(text),
            "prompt" => self.prompt = Some(text),
            "response_format" => self.response_format = Some(text),
            "fallbacks" | "fallbacks[]" => self.fallbacks.push(text),
            "options" => merge_options(&mut self.options, &text)?,
            // "between 0 and 1"
            // (<https://platform.openai.com/docs/api-reference/audio/createTranscription>).
            "temperature" => {
                let t = text
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|t| (0.0..=1.0).contains(t))
                    .ok_or_else(|| {
                        ApiError::invalid(
                            Some(name.into()),
                            "`temperature` must be a number from 0 to 1",
                        )
                    })?;
                self.options.insert(name.to_owned(), Value::from(t));
            }
            "timestamp_granularities" | "timestamp_granularities[]" => {
                let list = self
                    .options
                    .entry("timestamp_granularities")
                    .or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(items) = list {
                    items.push(Value::String(text));
                }
            }
            // OpenAI's SDK sends `stream` only when asked; anything but false is refused.
            "stream" if text.trim() == "false" => {}
            _ => {
                return Err(ApiError::invalid(
                    Some(name.to_owned()),
                    format!("unknown field `{name}`"),
                ));
            }
        }
        Ok(())
    }

    fn to_core(&self) -> Result<(TranscriptionRequest, TranscriptFormat), ApiError> {
        if self.model.trim().is_empty() {
            return Err(ApiError::invalid(
                Some("model".into()),
                "`model` must not be empty",
            ));
        }
        let Some(file) = self.file.clone() else {
            return Err(ApiError::invalid(
                Some("file".into()),
                "a transcription needs the audio as the multipart `file`",
            ));
        };
        let format = self
            .response_format
            .as_deref()
            .map_or(Ok(TranscriptFormat::Json), TranscriptFormat::parse)?;
        let mut req = TranscriptionRequest::new(self.model.clone(), file);
        req.language = self.language.clone().filter(|l| !l.trim().is_empty());
        req.prompt = self.prompt.clone().filter(|p| !p.trim().is_empty());
        req.options = self.options.clone();
        Ok((req, format))
    }
}

/// The MIME type a file name's extension stands for, for the audio formats providers read.
fn mime_from_name(name: &str) -> Option<&'static str> {
    let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "wav" => "audio/wav",
        "mp3" | "mpga" | "mpeg" => "audio/mpeg",
        "m4a" | "mp4" => "audio/mp4",
        "aac" => "audio/aac",
        "ogg" | "oga" => "audio/ogg",
        "flac" => "audio/flac",
        "aiff" | "aif" => "audio/aiff",
        "webm" => "audio/webm",
        _ => return None,
    })
}

async fn transcriptions(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    form: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<Response, ApiError> {
    let form = form.map_err(|e| {
        ApiError::invalid(
            None,
            format!(
                "a transcription is a multipart form (`file`, `model`, ...): {}",
                e.body_text()
            ),
        )
    })?;
    let form = TranscriptionForm::read(form).await?;
    let (req, format) = form.to_core()?;
    let call = call_context(&ctx, caller, &headers, &form.fallbacks)?;
    let Metered {
        value: answer,
        route,
        cost,
        usage,
        ..
    } = state
        .gateway()
        .transcribe_with(&call, req)
        .await
        .map_err(|e| model_error(&state, &form.model, e))?;
    let seconds = usage.map_or(answer.billing.units, |u| u.units);
    let mut response = transcript(answer, format, seconds, cost);
    set_cost(&mut response, cost);
    set_route(&mut response, &route);
    Ok(response)
}

/// OpenAI's transcription `usage` (`type: "duration"`), with the cost as a gateway extension.
#[derive(Serialize)]
struct TranscriptUsage {
    #[serde(rename = "type")]
    kind: &'static str,
    seconds: u64,
    cost_usd: Option<f64>,
}

#[derive(Serialize)]
struct JsonTranscript {
    text: String,
    usage: TranscriptUsage,
}

#[derive(Serialize)]
struct VerboseTranscript {
    task: &'static str,
    language: Option<String>,
    duration: Option<f64>,
    text: String,
    segments: Vec<VerboseSegment>,
    usage: TranscriptUsage,
}

#[derive(Serialize)]
struct VerboseSegment {
    id: usize,
    start: f64,
    end: f64,
    text: String,
}

/// The transcript in `format`.
fn transcript(
    answer: TranscriptionResponse,
    format: TranscriptFormat,
    seconds: u64,
    cost: Option<llm_gateway::Cost>,
) -> Response {
    let usage = TranscriptUsage {
        kind: "duration",
        seconds,
        cost_usd: cost.map(|c| c.nanos() as f64 / 1e9),
    };
    match format {
        TranscriptFormat::Json => Json(JsonTranscript {
            text: answer.text,
            usage,
        })
        .into_response(),
        TranscriptFormat::Text => {
            ([(CONTENT_TYPE, "text/plain; charset=utf-8")], answer.text).into_response()
        }
        TranscriptFormat::VerboseJson => Json(VerboseTranscript {
            task: "transcribe",
            language: answer.language,
            duration: answer.duration.map(|d| d.as_secs_f64()),
            segments: answer
                .segments
                .iter()
                .enumerate()
                .map(|(id, s)| VerboseSegment {
                    id,
                    start: s.start.as_secs_f64(),
                    end: s.end.as_secs_f64(),
                    text: s.text.clone(),
                })
                .collect(),
            text: answer.text,
            usage,
        })
        .into_response(),
        TranscriptFormat::Srt | TranscriptFormat::Vtt => {
            let cues = cues(&answer);
            let body = if format == TranscriptFormat::Srt {
                srt(&cues)
            } else {
                vtt(&cues)
            };
            let mime = if format == TranscriptFormat::Srt {
                "application/x-subrip; charset=utf-8"
            } else {
                "text/vtt; charset=utf-8"
            };
            ([(CONTENT_TYPE, mime)], body).into_response()
        }
    }
}

/// The timed pieces of a transcript: its segments, or, from a provider that gives none, the
/// whole text over the audio's length.
fn cues(answer: &TranscriptionResponse) -> Vec<Segment> {
    if !answer.segments.is_empty() {
        return answer.segments.clone();
    }
    let mut whole = Segment::default();
    whole.end = answer.duration.unwrap_or_default();
    whole.text = answer.text.clone();
    vec![whole]
}

/// `HH:MM:SS{sep}mmm`.
fn timestamp(at: Duration, sep: char) -> String {
    let ms = at.as_millis();
    format!(
        "{:02}:{:02}:{:02}{sep}{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

fn srt(cues: &[Segment]) -> String {
    let mut out = String::new();
    for (i, cue) in cues.iter().enumerate() {
        let _ = write!(
            out,
            "{}\n{} --> {}\n{}\n\n",
            i + 1,
            timestamp(cue.start, ','),
            timestamp(cue.end, ','),
            cue.text.trim()
        );
    }
    out
}

fn vtt(cues: &[Segment]) -> String {
    let mut out = String::from("WEBVTT\n\n");
    for cue in cues {
        let _ = write!(
            out,
            "{} --> {}\n{}\n\n",
            timestamp(cue.start, '.'),
            timestamp(cue.end, '.'),
            cue.text.trim()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn speech(v: Value) -> Result<SpeechRequest, ApiError> {
        serde_json::from_value::<SpeechBody>(v).unwrap().to_core()
    }

    #[test]
    fn a_speech_request_maps_openai_fields() {
        let req = speech(json!({
            "model": "gemini/gemini-2.5-flash-preview-tts", "input": "Hello", "voice": {"id": "Kore"},
            "response_format": "wav", "speed": 1.0, "instructions": "cheerfully"
        }))
        .unwrap();
        assert_eq!(req.voice.as_deref(), Some("Kore"));
        assert_eq!(req.format.as_deref(), Some("wav"));
        assert_eq!(req.options["instructions"], "cheerfully");
        for (body, param) in [
            (json!({"model": "m/x", "input": " "}), "input"),
            (json!({"model": "", "input": "a"}), "model"),
            (json!({"model": "m/x", "input": "a", "speed": 9.0}), "speed"),
            (json!({"model": "m/x", "input": "a", "voice": 3}), "voice"),
            (
                json!({"model": "m/x", "input": "a", "stream_format": "sse"}),
                "stream_format",
            ),
        ] {
            assert_eq!(
                speech(body.clone()).unwrap_err().param.as_deref(),
                Some(param),
                "{body}"
            );
        }
    }

    #[test]
    fn transcription_fields_are_read_or_refused_by_name() {
        let mut form = TranscriptionForm::default();
        for (name, value) in [
            ("model", "gemini/gemini-2.5-flash"),
            ("language", "en"),
            ("temperature", "0.2"),
            ("timestamp_granularities[]", "segment"),
            ("response_format", "verbose_json"),
        ] {
            form.set(name, value.into()).unwrap();
        }
        assert_eq!(form.to_core().unwrap_err().param.as_deref(), Some("file"));
        form.file = Some(MediaInput::bytes(&b"RIFF"[..], "audio/wav"));
        let (req, format) = form.to_core().unwrap();
        assert_eq!(format, TranscriptFormat::VerboseJson);
        assert_eq!(req.language.as_deref(), Some("en"));
        assert_eq!(req.options["temperature"], 0.2);
        assert_eq!(req.options["timestamp_granularities"], json!(["segment"]));
        for (name, value) in [
            ("temperature", "warm"),
            ("temperature", "1.5"),
            ("temperature", "NaN"),
            ("colour", "red"),
        ] {
            let err = form.set(name, value.into()).unwrap_err();
            assert_eq!(err.param.as_deref(), Some(name));
        }
        form.response_format = Some("docx".into());
        assert_eq!(
            form.to_core().unwrap_err().param.as_deref(),
            Some("response_format")
        );
        assert_eq!(mime_from_name("talk.MP3"), Some("audio/mpeg"));
        assert_eq!(mime_from_name("notes.txt"), None);
    }

    #[test]
    fn subtitles_are_timed_by_segment_or_over_the_whole_audio() {
        let mut answer = TranscriptionResponse::new("m", "Hello there.", Default::default());
        answer.duration = Some(Duration::from_millis(2_500));
        assert_eq!(
            srt(&cues(&answer)),
            "1\n00:00:00,000 --> 00:00:02,500\nHello there.\n\n"
        );
        let mut first = Segment::default();
        first.start = Duration::from_millis(61_250);
        first.end = Duration::from_millis(3_723_004);
        first.text = " Hi ".into();
        answer.segments = vec![first];
        assert_eq!(
            vtt(&cues(&answer)),
            "WEBVTT\n\n00:01:01.250 --> 01:02:03.004\nHi\n\n"
        );
    }
}
