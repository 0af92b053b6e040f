//! Speech both ways through the attempt loop: text to speech and transcription, planned as the
//! audio plan's units (characters or seconds, as the provider bills) and priced from what the
//! provider says the call bills.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use gateway_core::{
    DynSpeechModel, DynTranscriptionModel, Modality, PriceCatalog, Registry, Result, RouteId,
    Service, SpeechRequest, SpeechResponse, TranscriptionRequest, TranscriptionResponse, Usage,
};
use tracing::Instrument;

use super::Gateway;
use super::op::{Estimate, Operation, billed, billed_estimate, unpriced_by_usage};
use crate::cache::Kind;
use crate::metering::{CallContext, Metered, Pricer};

/// Text to speech (`audio.speech`).
pub(crate) struct Speak;

/// Speech to text (`audio.transcriptions`).
pub(crate) struct Transcribe;

impl Operation for Speak {
    type Model = dyn DynSpeechModel;
    type Request = SpeechRequest;
    type Output = SpeechResponse;

    const SERVICE: Service = Service::Speech;
    const PRICER: Pricer = unpriced_by_usage;

    fn name(&self) -> &'static str {
        "audio.speech"
    }

    fn model(&self, registry: &Registry, provider: &str) -> Option<Arc<dyn DynSpeechModel>> {
        registry.speech(provider).cloned()
    }

    fn check(
        &self,
        model: &dyn DynSpeechModel,
        route: &RouteId,
        req: &SpeechRequest,
    ) -> Result<()> {
        model.check_speech_dyn(&speech_for(req, route))
    }

    fn estimate(
        &self,
        model: &dyn DynSpeechModel,
        req: &SpeechRequest,
        route: &RouteId,
        pricing: &PriceCatalog,
    ) -> Estimate {
        billed_estimate(
            pricing,
            route,
            &model.speech_billing_dyn(&speech_for(req, route)),
        )
    }

    fn call(
        &self,
        model: Arc<dyn DynSpeechModel>,
        route: &RouteId,
        req: &SpeechRequest,
    ) -> BoxFuture<'static, Result<SpeechResponse>> {
        let req = speech_for(req, route);
        Box::pin(async move { model.speak_dyn(req).await })
    }
}

impl Operation for Transcribe {
    type Model = dyn DynTranscriptionModel;
    type Request = TranscriptionRequest;
    type Output = TranscriptionResponse;

    const SERVICE: Service = Service::Transcription;
    const PRICER: Pricer = unpriced_by_usage;

    fn name(&self) -> &'static str {
        "audio.transcriptions"
    }

    fn model(&self, registry: &Registry, provider: &str) -> Option<Arc<dyn DynTranscriptionModel>> {
        registry.transcription(provider).cloned()
    }

    fn check(
        &self,
        model: &dyn DynTranscriptionModel,
        route: &RouteId,
        req: &TranscriptionRequest,
    ) -> Result<()> {
        model.check_transcription_dyn(&transcription_for(req, route))
    }

    fn estimate(
        &self,
        model: &dyn DynTranscriptionModel,
        req: &TranscriptionRequest,
        route: &RouteId,
        pricing: &PriceCatalog,
    ) -> Estimate {
        let billing = model.transcription_billing_dyn(&transcription_for(req, route));
        billed_estimate(pricing, route, &billing)
    }

    fn call(
        &self,
        model: Arc<dyn DynTranscriptionModel>,
        route: &RouteId,
        req: &TranscriptionRequest,
    ) -> BoxFuture<'static, Result<TranscriptionResponse>> {
        let req = transcription_for(req, route);
        Box::pin(async move { model.transcribe_dyn(req).await })
    }
}

/// `req` addressed to `route`'s model id.
fn speech_for(req: &SpeechRequest, route: &RouteId) -> SpeechRequest {
    let mut req = req.clone();
    req.model = String::from(&*route.model);
    req
}

/// `req` addressed to `route`'s model id.
fn transcription_for(req: &TranscriptionRequest, route: &RouteId) -> TranscriptionRequest {
    let mut req = req.clone();
    req.model = String::from(&*route.model);
    req
}

impl Gateway {
    /// Speaks `req.input`; `req.model` is `<provider>/<model id>` or an alias.
    ///
    /// Without accounting this needs no caller; with it, use [`Gateway::speak_with`].
    pub async fn speak(&self, req: SpeechRequest) -> Result<SpeechResponse> {
        Ok(self.speak_with(&CallContext::default(), req).await?.value)
    }

    /// Speaks for `ctx`'s caller through the same loop as chat: the request checked against
    /// each route's model (voice, format) and the plan (its audio units and their expected cost)
    /// before any call, the chain's routes tried in order within the deadline, and the call
    /// settled after at what the provider billed.
    pub async fn speak_with(
        &self,
        ctx: &CallContext,
        req: SpeechRequest,
    ) -> Result<Metered<SpeechResponse>> {
        let trace = self.trace("generate_content", &req.model, ctx, false);
        async {
            // Only a request that pins its seed asks for the same audio again.
            let mut step = match req.options.get("seed") {
                Some(_) => self.cache_step(Kind::Speech, ctx, &req.model, &req, || None)?,
                None => self.cache_step_skipped(),
            };
            let what = (Modality::Audio, "speech");
            if let Some(hit) = self
                .answer_from_cache(&mut step, ctx, &trace, what, CachedSpeech::into_response)
                .await?
            {
                return Ok(hit);
            }
            let served = match self.attempt(&Speak, ctx, &trace, &req.model, &req).await {
                Ok(served) => served,
                Err(failed) => return Err(failed.settle().await),
            };
            let (usage, cost) = billed(
                &self.pricing,
                &served.meter.route,
                &served.value.billing,
                served.value.usage.tokens,
            );
            let mut metered = served.settle_priced(usage, false, cost).await;
            metered.cache = step.status;
            let kept = CachedSpeech::of(&metered.value);
            self.cache_store(step, ctx, &metered.route, metered.cost, &kept)
                .await;
            Ok(metered)
        }
        .instrument(trace.span())
        .await
    }

    /// Transcribes `req.audio`; `req.model` is `<provider>/<model id>` or an alias.
    ///
    /// Without accounting this needs no caller; with it, use [`Gateway::transcribe_with`].
    pub async fn transcribe(&self, req: TranscriptionRequest) -> Result<TranscriptionResponse> {
        Ok(self
            .transcribe_with(&CallContext::default(), req)
            .await?
            .value)
    }

    /// Transcribes for `ctx`'s caller, through the same loop and accounting as
    /// [`Gateway::speak_with`]; planned as the seconds of audio the provider expects to bill.
    pub async fn transcribe_with(
        &self,
        ctx: &CallContext,
        req: TranscriptionRequest,
    ) -> Result<Metered<TranscriptionResponse>> {
        let trace = self.trace("generate_content", &req.model, ctx, false);
        async {
            let served = match self
                .attempt(&Transcribe, ctx, &trace, &req.model, &req)
                .await
            {
                Ok(served) => served,
                Err(failed) => return Err(failed.settle().await),
            };
            let (usage, cost) = billed(
                &self.pricing,
                &served.meter.route,
                &served.value.billing,
                served.value.usage.tokens,
            );
            Ok(served.settle_priced(usage, false, cost).await)
        }
        .instrument(trace.span())
        .await
    }
}

/// Speech as the cache keeps it: the audio in base64.
#[derive(serde::Serialize, serde::Deserialize)]
struct CachedSpeech {
    model: String,
    mime: String,
    audio: String,
}

impl CachedSpeech {
    fn of(response: &SpeechResponse) -> Self {
        use base64::Engine as _;
        Self {
            model: response.model.clone(),
            mime: response.mime.clone(),
            audio: base64::engine::general_purpose::STANDARD.encode(&response.audio),
        }
    }

    /// The audio served again, billing nothing (undecodable audio is served empty rather than
    /// failing: the entry was written by this code, so it cannot be).
    fn into_response(self) -> SpeechResponse {
        use base64::Engine as _;
        let audio = base64::engine::general_purpose::STANDARD
            .decode(self.audio)
            .unwrap_or_default();
        SpeechResponse::new(self.model, audio.into(), self.mime, Usage::default())
    }
}
