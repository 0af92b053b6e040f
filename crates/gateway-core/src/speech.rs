//! Speech: text to audio.

use std::future::Future;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use serde_json::{Map, Value};

use crate::{Result, Usage};

/// A text-to-speech request, addressed to one provider's model id (after routing).
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct SpeechRequest {
    /// The provider's model id.
    pub model: String,
    /// The text to speak.
    pub input: String,
    /// The voice, as the provider names it.
    pub voice: Option<String>,
    /// The audio format wanted (`wav`, `mp3`, `pcm`, ...).
    pub format: Option<String>,
    /// Speaking speed, 1.0 normal.
    pub speed: Option<f64>,
    /// Provider-specific options; a provider refuses one it does not know, naming it.
    pub options: Map<String, Value>,
}

impl SpeechRequest {
    /// A request for `model` to speak `input`.
    pub fn new(model: impl Into<String>, input: impl Into<String>) -> Self {
        Self {
            model: model.into(),
            input: input.into(),
            ..Self::default()
        }
    }
}

/// Spoken audio.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct SpeechResponse {
    /// The model that answered.
    pub model: String,
    /// The audio.
    pub audio: Bytes,
    /// Its MIME type (`audio/wav`).
    pub mime: String,
    /// What the call used (characters or seconds as units, or tokens).
    pub usage: Usage,
}

impl SpeechResponse {
    /// A response of `model` with `audio` of type `mime`.
    pub fn new(
        model: impl Into<String>,
        audio: Bytes,
        mime: impl Into<String>,
        usage: Usage,
    ) -> Self {
        Self {
            model: model.into(),
            audio,
            mime: mime.into(),
            usage,
        }
    }
}

/// A provider of speech synthesis.
pub trait SpeechModel: Send + Sync {
    /// The provider id.
    fn provider(&self) -> &'static str;

    /// Speaks `req.input`.
    fn speak(&self, req: SpeechRequest) -> impl Future<Output = Result<SpeechResponse>> + Send;
}

/// The object-safe twin of [`SpeechModel`].
pub trait DynSpeechModel: Send + Sync {
    /// See [`SpeechModel::provider`].
    fn provider_dyn(&self) -> &'static str;
    /// See [`SpeechModel::speak`].
    fn speak_dyn(&self, req: SpeechRequest) -> BoxFuture<'_, Result<SpeechResponse>>;
}

impl<T: SpeechModel> DynSpeechModel for T {
    fn provider_dyn(&self) -> &'static str {
        self.provider()
    }

    fn speak_dyn(&self, req: SpeechRequest) -> BoxFuture<'_, Result<SpeechResponse>> {
        Box::pin(self.speak(req))
    }
}
