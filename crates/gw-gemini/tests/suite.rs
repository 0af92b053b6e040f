//! The shared provider suite (`gateway_core::testing`) against a mock Gemini that plays the
//! recorded answers of `tests/fixtures/`.

use std::sync::Arc;

use gateway_core::testing::{Case, Harness, Served};
use gw_gemini::{GeminiClient, PROVIDER};
use gw_mock::MockUpstream;
use gw_mock::fixture::{Respond, UpstreamExpect, UpstreamStep};

struct MockGemini;

const CHAT: &str = "gemini-2.5-flash";
const EMBED: &str = "gemini-embedding-001";
const IMAGE: &str = "gemini-2.5-flash-image";
const TTS: &str = "gemini-2.5-flash-preview-tts";

impl Harness for MockGemini {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    fn chat_model(&self) -> Option<&'static str> {
        Some(CHAT)
    }

    fn embedding_model(&self) -> Option<&'static str> {
        Some(EMBED)
    }

    fn image(&self) -> Option<(&'static str, &'static [u16])> {
        Some((IMAGE, &[400, 401, 404, 429, 500, 503]))
    }

    fn speech(&self) -> Option<(&'static str, &'static [u16])> {
        Some((TTS, &[400, 401, 429, 500, 503]))
    }

    fn transcription(&self) -> Option<(&'static str, &'static [u16])> {
        Some((CHAT, &[400, 401, 429, 500, 503]))
    }

    async fn serve(&self, case: Case) -> Served {
        let (path, file) = match case {
            Case::Generate => (
                format!("{CHAT}:generateContent"),
                "text/generate_ok.json".into(),
            ),
            Case::GenerateJson => (
                format!("{CHAT}:generateContent"),
                "text/generate_json.json".into(),
            ),
            Case::Stream => (
                format!("{CHAT}:streamGenerateContent"),
                "text/stream_ok.json".into(),
            ),
            Case::StreamCut => (
                format!("{CHAT}:streamGenerateContent"),
                "text/stream_cut.json".into(),
            ),
            Case::Error(status) => (
                format!("{CHAT}:generateContent"),
                format!("errors/{status}.json"),
            ),
            Case::EmbedOne => (
                format!("{EMBED}:batchEmbedContents"),
                "embed/batch_usage.json".into(),
            ),
            Case::EmbedTwo => (
                format!("{EMBED}:batchEmbedContents"),
                "embed/batch_two.json".into(),
            ),
            Case::Image => (
                format!("{IMAGE}:generateContent"),
                "image/flash_image_ok.json".into(),
            ),
            Case::ImageError(status) => (
                format!("{IMAGE}:generateContent"),
                format!("errors/{status}.json"),
            ),
            Case::Speech => (
                format!("{TTS}:generateContent"),
                "speech/tts_ok.json".into(),
            ),
            Case::SpeechError(status) => (
                format!("{TTS}:generateContent"),
                format!("errors/{status}.json"),
            ),
            Case::Transcription => (
                format!("{CHAT}:generateContent"),
                "transcription/transcript_ok.json".into(),
            ),
            Case::TranscriptionError(status) => (
                format!("{CHAT}:generateContent"),
                format!("errors/{status}.json"),
            ),
            other => panic!("no recording for {other:?}"),
        };
        let step = UpstreamStep {
            expect: UpstreamExpect {
                method: Some("POST".into()),
                path: Some(format!("/v1beta/models/{path}")),
                ..UpstreamExpect::default()
            },
            respond: Respond::recorded(env!("CARGO_MANIFEST_DIR"), &file),
        };
        let mock = Arc::new(MockUpstream::start(vec![step]).await.unwrap());
        let client = Arc::new(
            GeminiClient::builder()
                .api_key("suite-key")
                .base_url(mock.url())
                .build()
                .unwrap(),
        );
        Served {
            text: Some(client.clone()),
            embedding: Some(client.clone()),
            search: None,
            image: Some(client.clone()),
            speech: Some(client.clone()),
            transcription: Some(client),
            verify: Box::new(move || mock.verify()),
        }
    }
}

#[tokio::test]
async fn gemini_passes_the_shared_suite() {
    gateway_core::testing::run(&MockGemini).await;
}
