//! [`SpeechModel`] for [`GeminiClient`]: `generateContent` on the text-to-speech models, the IO
//! only; mapping lives in `convert::speech`.

use gateway_core::http::read_json;
use gateway_core::{Billing, Result, SpeechModel, SpeechRequest, SpeechResponse};

use crate::convert::speech as convert;
use crate::error::classify;
use crate::{GeminiClient, PROVIDER, wire};

impl SpeechModel for GeminiClient {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    /// A `-tts` model, a documented voice, `wav` or `pcm`, speed 1.0, and no option but
    /// `instructions`.
    fn check_speech(&self, req: &SpeechRequest) -> Result<()> {
        convert::check_speech(req)
    }

    /// Seconds of audio at a slow reading of the text, and their tokens.
    fn speech_billing(&self, req: &SpeechRequest) -> Billing {
        convert::speech_billing(req)
    }

    async fn speak(&self, req: SpeechRequest) -> Result<SpeechResponse> {
        let (body, output) = convert::speech_request(&req)?;
        let path = GeminiClient::endpoint(&req.model, "generateContent")?;
        tracing::debug!(provider = PROVIDER, model = %req.model, "generateContent (speech)");
        let response = self.post_json(&path, &body, classify).await?;
        let answer: wire::GenerateContentResponse = read_json(PROVIDER, response).await?;
        convert::speech_response(answer, &req.model, output)
    }
}
