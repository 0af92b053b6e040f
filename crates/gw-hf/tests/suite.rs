//! The shared provider suite (`gateway_core::testing`) against a mock Hugging Face router that plays the
//! recorded answers of `tests/fixtures/`.

use std::sync::Arc;

use gateway_core::testing::{Case, Harness, Served};
use gw_hf::{HfClient, PROVIDER};
use gw_mock::MockUpstream;
use gw_mock::fixture::{Respond, UpstreamExpect, UpstreamStep};

struct MockHf;

const CHAT: &str = "meta-llama/Llama-3.1-8B-Instruct:cerebras";
const EMBED: &str = "sentence-transformers/distilbert-base-nli-mean-tokens";
const IMAGE: &str = "stabilityai/stable-diffusion-xl-base-1.0:hf-inference";

impl Harness for MockHf {
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

    async fn serve(&self, case: Case) -> Served {
        let chat = "/v1/chat/completions".to_owned();
        let embed = format!("/hf-inference/models/{EMBED}/pipeline/feature-extraction");
        let image = format!(
            "/hf-inference/models/{}",
            IMAGE.trim_end_matches(":hf-inference")
        );
        let (path, file) = match case {
            Case::Generate => (chat, "text/generate_ok.json".to_owned()),
            Case::GenerateJson => (chat, "text/generate_json.json".into()),
            Case::Stream => (chat, "text/stream_ok.json".into()),
            Case::StreamCut => (chat, "text/stream_cut.json".into()),
            Case::Error(status) => (chat, format!("errors/{status}.json")),
            Case::EmbedOne => (embed, "embed/one_flat.json".into()),
            Case::EmbedTwo => (embed, "embed/two.json".into()),
            Case::Image => (image, "image/hf_inference_png.json".into()),
            Case::ImageError(status) => (image, format!("errors/{status}.json")),
            other => panic!("no recording for {other:?}"),
        };
        let step = UpstreamStep {
            expect: UpstreamExpect {
                method: Some("POST".into()),
                path: Some(path),
                ..UpstreamExpect::default()
            },
            respond: Respond::recorded(env!("CARGO_MANIFEST_DIR"), &file),
        };
        let mock = Arc::new(MockUpstream::start(vec![step]).await.unwrap());
        let client = Arc::new(
            HfClient::builder()
                .api_key("suite-key")
                .base_url(mock.url())
                .build()
                .unwrap(),
        );
        Served {
            text: Some(client.clone()),
            embedding: Some(client.clone()),
            search: None,
            image: Some(client),
            speech: None,
            transcription: None,
            verify: Box::new(move || mock.verify()),
        }
    }
}

#[tokio::test]
async fn hf_passes_the_shared_suite() {
    gateway_core::testing::run(&MockHf).await;
}
