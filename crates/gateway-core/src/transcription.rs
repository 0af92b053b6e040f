//! Transcription: audio to text.

use std::future::Future;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde_json::{Map, Value};

use crate::{Billing, MediaInput, Result, Usage};

/// A speech-to-text request, addressed to one provider's model id (after routing).
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct TranscriptionRequest {
    /// The provider's model id.
    pub model: String,
    /// The audio.
    pub audio: Option<MediaInput>,
    /// The spoken language (ISO 639-1), when known.
    pub language: Option<String>,
    /// Text that guides the transcription (names, spelling, the previous segment).
    pub prompt: Option<String>,
    /// Provider-specific options; a provider refuses one it does not know, naming it.
    pub options: Map<String, Value>,
}

impl TranscriptionRequest {
    /// A request for `model` to transcribe `audio`.
    pub fn new(model: impl Into<String>, audio: MediaInput) -> Self {
        Self {
            model: model.into(),
            audio: Some(audio),
            ..Self::default()
        }
    }
}

/// One timed segment of a transcript.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct Segment {
    /// Where it starts.
    pub start: Duration,
    /// Where it ends.
    pub end: Duration,
    /// What was said.
    pub text: String,
}

/// A transcript.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct TranscriptionResponse {
    /// The model that answered.
    pub model: String,
    /// The whole text.
    pub text: String,
    /// The language, when the provider says.
    pub language: Option<String>,
    /// The audio's length, when known.
    pub duration: Option<Duration>,
    /// Timed segments, where the model gives them.
    pub segments: Vec<Segment>,
    /// What the call used (seconds as units, or tokens).
    pub usage: Usage,
    /// What the call billed: its plan units (seconds of audio) and the charges the catalog
    /// prices, or the cost the provider reported.
    pub billing: Billing,
}

impl TranscriptionResponse {
    /// A response of `model` with `text` and `usage`.
    pub fn new(model: impl Into<String>, text: impl Into<String>, usage: Usage) -> Self {
        Self {
            model: model.into(),
            text: text.into(),
            usage,
            ..Self::default()
        }
    }

    /// Sets what the call billed.
    pub fn billing(mut self, billing: Billing) -> Self {
        self.billing = billing;
        self
    }
}

/// A provider of transcription.
pub trait TranscriptionModel: Send + Sync {
    /// The provider id.
    fn provider(&self) -> &'static str;

    /// Refuses, before any IO and naming the field, audio this provider or its model cannot
    /// take (a format it does not read, audio too long or too large, no audio at all).
    fn check_transcription(&self, req: &TranscriptionRequest) -> Result<()> {
        match &req.audio {
            Some(audio) if !audio.is_empty() => Ok(()),
            _ => Err(crate::Error::invalid_request("the audio `file` is empty").with_param("file")),
        }
    }

    /// What the call is expected to bill, for admission before it: the seconds of audio (as
    /// plan units) and their charges. It must not undercount: where the length cannot be read
    /// from the audio, count it from the smallest bitrate the format allows. The default bills
    /// nothing, which a plan with an audio limit cannot check: providers override it.
    fn transcription_billing(&self, req: &TranscriptionRequest) -> Billing {
        let _ = req;
        Billing::default()
    }

    /// Transcribes `req.audio`.
    fn transcribe(
        &self,
        req: TranscriptionRequest,
    ) -> impl Future<Output = Result<TranscriptionResponse>> + Send;
}

/// The object-safe twin of [`TranscriptionModel`].
pub trait DynTranscriptionModel: Send + Sync {
    /// See [`TranscriptionModel::provider`].
    fn provider_dyn(&self) -> &'static str;
    /// See [`TranscriptionModel::check_transcription`].
    fn check_transcription_dyn(&self, req: &TranscriptionRequest) -> Result<()>;
    /// See [`TranscriptionModel::transcription_billing`].
    fn transcription_billing_dyn(&self, req: &TranscriptionRequest) -> Billing;
    /// See [`TranscriptionModel::transcribe`].
    fn transcribe_dyn(
        &self,
        req: TranscriptionRequest,
    ) -> BoxFuture<'_, Result<TranscriptionResponse>>;
}

impl<T: TranscriptionModel> DynTranscriptionModel for T {
    fn provider_dyn(&self) -> &'static str {
        self.provider()
    }

    fn check_transcription_dyn(&self, req: &TranscriptionRequest) -> Result<()> {
        self.check_transcription(req)
    }

    fn transcription_billing_dyn(&self, req: &TranscriptionRequest) -> Billing {
        self.transcription_billing(req)
    }

    fn transcribe_dyn(
        &self,
        req: TranscriptionRequest,
    ) -> BoxFuture<'_, Result<TranscriptionResponse>> {
        Box::pin(self.transcribe(req))
    }
}
