//! Speech: text to audio.

use std::future::Future;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use serde_json::{Map, Value};

use crate::{Billing, Charge, PriceUnit, Result, Usage};

/// A text-to-speech request, addressed to one provider's model id (after routing).
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
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
    /// What the call billed: its plan units (characters or seconds of audio, as the provider
    /// bills) and the charges the catalog prices, or the cost the provider reported.
    pub billing: Billing,
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
            billing: Billing::default(),
        }
    }

    /// Sets what the call billed.
    pub fn billing(mut self, billing: Billing) -> Self {
        self.billing = billing;
        self
    }
}

/// What speaking `input` is expected to bill when it is priced per character: its characters,
/// as plan units and as one charge. The default estimate of every speech provider.
pub fn per_character_billing(input: &str) -> Billing {
    let chars = input.chars().count() as u64;
    Billing::new(chars, vec![Charge::new(PriceUnit::Character, chars)])
}

/// A provider of speech synthesis.
pub trait SpeechModel: Send + Sync {
    /// The provider id.
    fn provider(&self) -> &'static str;

    /// Refuses, before any IO and naming the field, a request this provider or its model cannot
    /// serve (a voice that does not exist, a format it cannot give, input too long).
    fn check_speech(&self, req: &SpeechRequest) -> Result<()> {
        let _ = req;
        Ok(())
    }

    /// What the call is expected to bill, for admission before it: by default its characters
    /// ([`per_character_billing`]).
    fn speech_billing(&self, req: &SpeechRequest) -> Billing {
        per_character_billing(&req.input)
    }

    /// Speaks `req.input`.
    fn speak(&self, req: SpeechRequest) -> impl Future<Output = Result<SpeechResponse>> + Send;
}

/// The object-safe twin of [`SpeechModel`].
pub trait DynSpeechModel: Send + Sync {
    /// See [`SpeechModel::provider`].
    fn provider_dyn(&self) -> &'static str;
    /// See [`SpeechModel::check_speech`].
    fn check_speech_dyn(&self, req: &SpeechRequest) -> Result<()>;
    /// See [`SpeechModel::speech_billing`].
    fn speech_billing_dyn(&self, req: &SpeechRequest) -> Billing;
    /// See [`SpeechModel::speak`].
    fn speak_dyn(&self, req: SpeechRequest) -> BoxFuture<'_, Result<SpeechResponse>>;
}

impl<T: SpeechModel> DynSpeechModel for T {
    fn provider_dyn(&self) -> &'static str {
        self.provider()
    }

    fn check_speech_dyn(&self, req: &SpeechRequest) -> Result<()> {
        self.check_speech(req)
    }

    fn speech_billing_dyn(&self, req: &SpeechRequest) -> Billing {
        self.speech_billing(req)
    }

    fn speak_dyn(&self, req: SpeechRequest) -> BoxFuture<'_, Result<SpeechResponse>> {
        Box::pin(self.speak(req))
    }
}
