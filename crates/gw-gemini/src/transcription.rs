//! [`TranscriptionModel`] for [`GeminiClient`]: the audio and an instruction to transcribe it,
//! sent to `generateContent` inline or, when larger than the inline limit, through the Files
//! API; the IO only, mapping lives in `convert::transcription`.

use gateway_core::http::read_json;
use gateway_core::{
    Billing, MediaInput, Result, TranscriptionModel, TranscriptionRequest, TranscriptionResponse,
};

use crate::convert::transcription::{self as convert, AudioPart};
use crate::error::classify;
use crate::{GeminiClient, PROVIDER, wire};

impl TranscriptionModel for GeminiClient {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    /// A Gemini chat model, audio bytes in a format Gemini reads, at most 9.5 hours long.
    fn check_transcription(&self, req: &TranscriptionRequest) -> Result<()> {
        convert::audio_of(req).map(drop)
    }

    /// The audio's seconds, read from it or bounded from above, and their tokens.
    fn transcription_billing(&self, req: &TranscriptionRequest) -> Billing {
        convert::transcription_billing(req)
    }

    async fn transcribe(&self, req: TranscriptionRequest) -> Result<TranscriptionResponse> {
        let audio = convert::audio_of(&req)?;
        let part = match &req.audio {
            Some(MediaInput::Bytes { data, .. }) if data.len() > self.inline_audio_max_bytes() => {
                AudioPart::File(self.upload(data.clone(), audio.format.mime()).await?)
            }
            _ => AudioPart::Inline,
        };
        let body = convert::transcription_request(&req, &audio, &part);
        let path = GeminiClient::endpoint(&req.model, "generateContent")?;
        tracing::debug!(
            provider = PROVIDER,
            model = %req.model,
            bytes = audio.data.len(),
            inline = part == AudioPart::Inline,
            "generateContent (transcription)"
        );
        let response = self.post_json(&path, &body, classify).await?;
        let answer: wire::GenerateContentResponse = read_json(PROVIDER, response).await?;
        convert::transcription_response(answer, &req, audio.length)
    }
}
