//! The behaviour suite every provider crate runs (feature `testing`, for dev-dependencies).
//!
//! One set of provider-independent checks, chosen by what the provider says it can do: a
//! provider crate implements [`Harness`] (serve the provider's recorded answer for a [`Case`]
//! from a mock upstream, and point a client at it), then calls [`run`]. Each check asserts what
//! the router relies on, whatever the provider: an answer maps to text, a finish reason and
//! usage; a stream yields deltas, then one finish, and a cut stream ends in an error, never a
//! clean end; each error status maps to the kind that decides retries and fallbacks, attributed
//! to the provider, with its body kept; embeddings come back one vector per input.
//!
//! ```text
//! // crates/gw-<provider>/tests/suite.rs
//! struct Mock;
//! impl gateway_core::testing::Harness for Mock { ... }
//! #[tokio::test]
//! async fn shared_suite() { gateway_core::testing::run(&Mock).await }
//! ```

use std::future::Future;
use std::sync::Arc;

use futures_util::StreamExt;

use crate::{
    DynEmbeddingModel, DynImageModel, DynSearchProvider, DynSpeechModel, DynTextModel,
    DynTranscriptionModel, EmbeddingRequest, ErrorKind, FinishReason, ImageRequest, MediaInput,
    MediaOutput, ResponseFormat, SearchRequest, SpeechRequest, TextChunk, TextRequest,
    TranscriptionRequest,
};

/// One recorded exchange the suite needs the provider to serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Case {
    /// A whole chat answer (`Harness::text_model`; the suite calls `generate`).
    Generate,
    /// A chat answer in JSON mode (`json_object`).
    GenerateJson,
    /// A streamed chat answer that ends normally.
    Stream,
    /// A streamed chat answer cut off before its normal end.
    StreamCut,
    /// An error answer with this HTTP status, to a chat request.
    Error(u16),
    /// Embeddings of one input.
    EmbedOne,
    /// Embeddings of two inputs.
    EmbedTwo,
    /// A web search with results.
    Search,
    /// A web search that found nothing.
    SearchEmpty,
    /// An error answer with this HTTP status, to a search.
    SearchError(u16),
    /// One image generated from a prompt (`Harness::image`; the suite calls `generate_image`).
    Image,
    /// An error answer with this HTTP status, to an image generation.
    ImageError(u16),
    /// Speech from a short text (`Harness::speech`; the suite calls `speak`).
    Speech,
    /// An error answer with this HTTP status, to a speech request.
    SpeechError(u16),
    /// A transcript of a short WAV (`Harness::transcription`; the suite calls `transcribe`).
    Transcription,
    /// An error answer with this HTTP status, to a transcription.
    TranscriptionError(u16),
}

/// What a harness serves for a case: a provider client pointed at a mock upstream that plays
/// the recorded exchange, and how to ask the mock what it received.
pub struct Served {
    /// The chat provider, for chat cases.
    pub text: Option<Arc<dyn DynTextModel>>,
    /// The embeddings provider, for embedding cases.
    pub embedding: Option<Arc<dyn DynEmbeddingModel>>,
    /// The search provider, for search cases.
    pub search: Option<Arc<dyn DynSearchProvider>>,
    /// The image provider, for image cases.
    pub image: Option<Arc<dyn DynImageModel>>,
    /// The speech provider, for speech cases.
    pub speech: Option<Arc<dyn DynSpeechModel>>,
    /// The transcription provider, for transcription cases.
    pub transcription: Option<Arc<dyn DynTranscriptionModel>>,
    /// Called once the case is over: every way the requests the mock received differed from
    /// what the recording expects (none when all is well). It owns the mock, keeping it alive.
    pub verify: Box<dyn Fn() -> Vec<String> + Send + Sync>,
}

/// A provider's side of the suite.
pub trait Harness: Sync {
    /// The provider id, as errors must carry it.
    fn provider(&self) -> &'static str;

    /// The chat model id to put in requests (`gemini-2.5-flash`), when the provider chats.
    fn chat_model(&self) -> Option<&'static str> {
        None
    }

    /// The embeddings model id, when the provider embeds.
    fn embedding_model(&self) -> Option<&'static str> {
        None
    }

    /// The search endpoint (`search`) and the HTTP statuses the provider has recorded search
    /// errors for, when the provider searches.
    fn search(&self) -> Option<(&'static str, &'static [u16])> {
        None
    }

    /// The image model id and the HTTP statuses the provider has recorded image errors for,
    /// when the provider generates images.
    fn image(&self) -> Option<(&'static str, &'static [u16])> {
        None
    }

    /// The speech model id and the HTTP statuses the provider has recorded speech errors for,
    /// when the provider speaks.
    fn speech(&self) -> Option<(&'static str, &'static [u16])> {
        None
    }

    /// The transcription model id and the HTTP statuses the provider has recorded
    /// transcription errors for, when the provider transcribes.
    fn transcription(&self) -> Option<(&'static str, &'static [u16])> {
        None
    }

    /// Serves the provider's recording of `case`.
    fn serve(&self, case: Case) -> impl Future<Output = Served> + Send;
}

/// The cases that apply to a provider that does what `text` and `embedding` say: generation
/// and errors when it chats, streams and JSON when it claims them, embeddings when it embeds.
pub fn cases(text: Option<crate::TextCaps>, embeds: bool) -> Vec<Case> {
    let mut cases = Vec::new();
    if let Some(caps) = text {
        cases.push(Case::Generate);
        if caps.json_object {
            cases.push(Case::GenerateJson);
        }
        if caps.streaming {
            cases.extend([Case::Stream, Case::StreamCut]);
        }
        cases.extend([400, 401, 404, 429, 500, 503].map(Case::Error));
    }
    if embeds {
        cases.extend([Case::EmbedOne, Case::EmbedTwo]);
    }
    cases
}

/// Runs every case that applies to the provider `harness` serves.
pub async fn run<H: Harness>(harness: &H) {
    let text = match harness.chat_model() {
        Some(_) => harness
            .serve(Case::Generate)
            .await
            .text
            .map(|m| m.capabilities_dyn()),
        None => None,
    };
    let embeds = harness.embedding_model().is_some();
    let mut all = cases(text, embeds);
    if let Some((_, errors)) = harness.search() {
        all.extend([Case::Search, Case::SearchEmpty]);
        all.extend(errors.iter().map(|&status| Case::SearchError(status)));
    }
    if let Some((_, errors)) = harness.image() {
        all.push(Case::Image);
        all.extend(errors.iter().map(|&status| Case::ImageError(status)));
    }
    if let Some((_, errors)) = harness.speech() {
        all.push(Case::Speech);
        all.extend(errors.iter().map(|&status| Case::SpeechError(status)));
    }
    if let Some((_, errors)) = harness.transcription() {
        all.push(Case::Transcription);
        all.extend(
            errors
                .iter()
                .map(|&status| Case::TranscriptionError(status)),
        );
    }
    for case in all {
        let served = harness.serve(case).await;
        check(harness, case, &served).await;
        let differences = (served.verify)();
        assert!(
            differences.is_empty(),
            "{case:?}: the provider's request differed from the recording: {differences:?}"
        );
    }
}

/// The text model of `served`, which a chat case needs.
fn text_model(served: &Served, case: Case) -> &Arc<dyn DynTextModel> {
    served
        .text
        .as_ref()
        .unwrap_or_else(|| panic!("{case:?}: the harness served no chat provider"))
}

/// Runs one case against what the harness served.
pub async fn check<H: Harness>(harness: &H, case: Case, served: &Served) {
    let chat_model = harness.chat_model().unwrap_or_default();
    let chat = || TextRequest::new(chat_model).user("Say hi");
    match case {
        Case::Generate | Case::GenerateJson => {
            let mut req = chat();
            if case == Case::GenerateJson {
                req = req.response_format(ResponseFormat::JsonObject);
            }
            let answer = text_model(served, case)
                .generate_dyn(req)
                .await
                .unwrap_or_else(|e| panic!("{case:?}: {e}"));
            assert!(!answer.content.is_empty(), "{case:?}: empty answer");
            assert!(!answer.model.is_empty(), "{case:?}: no model named");
            assert_eq!(answer.finish_reason, FinishReason::Stop, "{case:?}");
            assert!(
                answer.usage.input_tokens > 0 && answer.usage.output_tokens > 0,
                "{case:?}: the recording reports usage, the answer must carry it: {:?}",
                answer.usage
            );
            if case == Case::GenerateJson {
                let parsed: Result<serde_json::Value, _> = serde_json::from_str(&answer.content);
                assert!(parsed.is_ok(), "{case:?}: not JSON: {}", answer.content);
            }
        }
        Case::Stream => streams(text_model(served, case), chat_model).await,
        Case::StreamCut => stream_is_cut(text_model(served, case), chat_model).await,
        Case::Error(status) => {
            let err = text_model(served, case)
                .generate_dyn(chat())
                .await
                .expect_err("an error answer must be an error");
            error_is_classified(harness.provider(), status, &err);
        }
        Case::Search | Case::SearchEmpty | Case::SearchError(_) => {
            searches(harness, case, served).await;
        }
        Case::Image | Case::ImageError(_) => images(harness, case, served).await,
        Case::Speech | Case::SpeechError(_) => speaks(harness, case, served).await,
        Case::Transcription | Case::TranscriptionError(_) => {
            transcribes(harness, case, served).await;
        }
        Case::EmbedOne | Case::EmbedTwo => {
            let model = served
                .embedding
                .as_ref()
                .unwrap_or_else(|| panic!("{case:?}: the harness served no embeddings provider"));
            let mut req = EmbeddingRequest::new(harness.embedding_model().unwrap_or_default())
                .input("What is the meaning of life?");
            if case == Case::EmbedTwo {
                req = req.input("How much wood would a woodchuck chuck?");
            }
            let inputs = req.inputs.len();
            model
                .embedding_capabilities_dyn()
                .check(harness.provider(), &req)
                .unwrap_or_else(|e| panic!("{case:?}: refused before IO: {e}"));
            let answer = model
                .embed_dyn(req)
                .await
                .unwrap_or_else(|e| panic!("{case:?}: {e}"));
            assert_eq!(
                answer.embeddings.len(),
                inputs,
                "{case:?}: one vector per input"
            );
            let dims = answer.embeddings[0].len();
            assert!(dims > 0, "{case:?}: empty vector");
            assert!(
                answer.embeddings.iter().all(|v| v.len() == dims),
                "{case:?}: vectors of different lengths"
            );
            assert!(
                answer.embeddings.iter().flatten().all(|x| x.is_finite()),
                "{case:?}: a value is not a finite number"
            );
        }
    }
}

/// A search: results with a title and a URL each (none for `SearchEmpty`), and billed units;
/// or, for `SearchError`, an error classified by its status.
async fn searches<H: Harness>(harness: &H, case: Case, served: &Served) {
    let model = served
        .search
        .as_ref()
        .unwrap_or_else(|| panic!("{case:?}: the harness served no search provider"));
    let endpoint = harness.search().map_or("search", |(e, _)| e);
    let req = SearchRequest::new(endpoint, "Who won the 2024 Nobel Prize in Physics?");
    model
        .check_dyn(&req)
        .unwrap_or_else(|e| panic!("{case:?}: refused before IO: {e}"));
    let result = model.search_dyn(req).await;
    if let Case::SearchError(status) = case {
        let err = result.expect_err("an error answer must be an error");
        return error_is_classified(harness.provider(), status, &err);
    }
    let answer = result.unwrap_or_else(|e| panic!("{case:?}: {e}"));
    if case == Case::SearchEmpty {
        assert!(answer.results.is_empty(), "{case:?}: results from nothing");
    } else {
        assert!(!answer.results.is_empty(), "{case:?}: no results");
    }
    for r in &answer.results {
        assert!(!r.title.is_empty() && !r.url.is_empty(), "{case:?}: {r:?}");
    }
    assert!(
        answer.billing.units > 0,
        "{case:?}: a search bills at least one unit"
    );
}

/// An image generation: one image, bytes that are an image or a URL, billed as one unit; or,
/// for `ImageError`, an error classified by its status.
async fn images<H: Harness>(harness: &H, case: Case, served: &Served) {
    let model = served
        .image
        .as_ref()
        .unwrap_or_else(|| panic!("{case:?}: the harness served no image provider"));
    let id = harness.image().map_or("", |(id, _)| id);
    let req = ImageRequest::new(id, "A lighthouse at dusk, oil painting");
    model
        .check_generation_dyn(&req)
        .unwrap_or_else(|e| panic!("{case:?}: refused before IO: {e}"));
    let expected = model.generation_billing_dyn(&req);
    assert_eq!(
        expected.units, 1,
        "{case:?}: one image is expected to bill one unit"
    );
    let result = model.generate_image_dyn(req).await;
    if let Case::ImageError(status) = case {
        let err = result.expect_err("an error answer must be an error");
        return error_is_classified(harness.provider(), status, &err);
    }
    let answer = result.unwrap_or_else(|e| panic!("{case:?}: {e}"));
    assert_eq!(
        answer.images.len(),
        1,
        "{case:?}: one image asked, one given"
    );
    match &answer.images[0] {
        MediaOutput::Bytes { data, mime } => {
            let sniffed = crate::media::sniff_image(data)
                .unwrap_or_else(|| panic!("{case:?}: the bytes are not an image"));
            assert_eq!(
                mime, sniffed,
                "{case:?}: the MIME type must be the bytes' own"
            );
        }
        MediaOutput::Url { url, .. } => {
            assert!(
                url.starts_with("https://") || url.starts_with("http://"),
                "{url}"
            )
        }
    }
    assert_eq!(
        answer.billing.units, 1,
        "{case:?}: one image bills one unit"
    );
    assert!(
        !answer.billing.charges.is_empty() || answer.billing.reported_cost.is_some(),
        "{case:?}: an image is billed by charges or a reported cost"
    );
}

/// Speech: non-empty audio whose MIME type is its own (a WAV must parse: a RIFF/WAVE header
/// whose `data` chunk fits in the bytes), billed units; or, for `SpeechError`, an error
/// classified by its status.
async fn speaks<H: Harness>(harness: &H, case: Case, served: &Served) {
    let model = served
        .speech
        .as_ref()
        .unwrap_or_else(|| panic!("{case:?}: the harness served no speech provider"));
    let id = harness.speech().map_or("", |(id, _)| id);
    let req = SpeechRequest::new(id, "Have a wonderful day!");
    model
        .check_speech_dyn(&req)
        .unwrap_or_else(|e| panic!("{case:?}: refused before IO: {e}"));
    assert!(
        model.speech_billing_dyn(&req).units > 0,
        "{case:?}: speech is expected to bill units"
    );
    let result = model.speak_dyn(req).await;
    if let Case::SpeechError(status) = case {
        let err = result.expect_err("an error answer must be an error");
        return error_is_classified(harness.provider(), status, &err);
    }
    let answer = result.unwrap_or_else(|e| panic!("{case:?}: {e}"));
    assert!(!answer.audio.is_empty(), "{case:?}: no audio");
    assert!(
        answer.mime.starts_with("audio/"),
        "{case:?}: `{}` is not an audio type",
        answer.mime
    );
    let riff = answer.audio.starts_with(b"RIFF") && answer.audio.get(8..12) == Some(b"WAVE");
    let mime = answer.mime.split(';').next().unwrap_or_default().trim();
    let wav_mime = matches!(mime, "audio/wav" | "audio/x-wav" | "audio/wave");
    assert_eq!(
        riff, wav_mime,
        "{case:?}: the bytes and the MIME type `{}` disagree on WAV",
        answer.mime
    );
    if riff {
        wav_is_well_formed(&answer.audio).unwrap_or_else(|why| panic!("{case:?}: {why}"));
    }
    assert!(answer.billing.units > 0, "{case:?}: speech bills units");
    assert!(
        !answer.billing.charges.is_empty() || answer.billing.reported_cost.is_some(),
        "{case:?}: speech is billed by charges or a reported cost"
    );
}

/// Why `data` is not a well-formed WAV: its chunks must be walkable from the RIFF header to a
/// `fmt ` chunk, then a `data` chunk whose size fits in the bytes.
pub fn wav_is_well_formed(data: &[u8]) -> Result<(), String> {
    let u32_at = |at: usize| -> Option<usize> {
        Some(u32::from_le_bytes(data.get(at..at + 4)?.try_into().ok()?) as usize)
    };
    if !(data.starts_with(b"RIFF") && data.get(8..12) == Some(b"WAVE")) {
        return Err("no RIFF/WAVE header".into());
    }
    let riff = u32_at(4).ok_or("no RIFF size")?;
    if riff + 8 > data.len() {
        return Err(format!(
            "the RIFF size {riff} exceeds the {} bytes",
            data.len()
        ));
    }
    let (mut at, mut fmt) = (12, false);
    while at + 8 <= data.len() {
        let size = u32_at(at + 4).ok_or("a chunk without a size")?;
        match &data[at..at + 4] {
            b"fmt " => fmt = size >= 16,
            b"data" if !fmt => return Err("a `data` chunk before any `fmt ` chunk".into()),
            b"data" if at + 8 + size > data.len() => {
                return Err(format!(
                    "the `data` chunk of {size} bytes exceeds the {} bytes after it",
                    data.len() - at - 8
                ));
            }
            b"data" => return Ok(()),
            _ => {}
        }
        at += 8 + size + (size & 1);
    }
    Err("no `data` chunk".into())
}

/// A transcription of a short WAV: non-empty text, billed units; or, for `TranscriptionError`,
/// an error classified by its status.
async fn transcribes<H: Harness>(harness: &H, case: Case, served: &Served) {
    let model = served
        .transcription
        .as_ref()
        .unwrap_or_else(|| panic!("{case:?}: the harness served no transcription provider"));
    let id = harness.transcription().map_or("", |(id, _)| id);
    let req = TranscriptionRequest::new(id, MediaInput::bytes(one_second_wav(), "audio/wav"));
    model
        .check_transcription_dyn(&req)
        .unwrap_or_else(|e| panic!("{case:?}: refused before IO: {e}"));
    assert!(
        model.transcription_billing_dyn(&req).units > 0,
        "{case:?}: a transcription is expected to bill its seconds of audio"
    );
    let result = model.transcribe_dyn(req).await;
    if let Case::TranscriptionError(status) = case {
        let err = result.expect_err("an error answer must be an error");
        return error_is_classified(harness.provider(), status, &err);
    }
    let answer = result.unwrap_or_else(|e| panic!("{case:?}: {e}"));
    assert!(!answer.text.trim().is_empty(), "{case:?}: no text");
    assert!(
        answer.billing.units > 0,
        "{case:?}: a transcription bills its seconds of audio"
    );
}

/// One second of silence: 16-bit mono PCM at 16 kHz in a 44-byte WAV header.
pub fn one_second_wav() -> Vec<u8> {
    let pcm_len: u32 = 32_000;
    let mut out = Vec::with_capacity(44 + pcm_len as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + pcm_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    for (value, width) in [
        (16u32, 4),
        (1, 2),
        (1, 2),
        (16_000, 4),
        (32_000, 4),
        (2, 2),
        (16, 2),
    ] {
        out.extend_from_slice(&value.to_le_bytes()[..width]);
    }
    out.extend_from_slice(b"data");
    out.extend_from_slice(&pcm_len.to_le_bytes());
    out.resize(44 + pcm_len as usize, 0);
    out
}

/// A normal stream: text deltas, exactly one finish after every delta, usage (if any) last and
/// non-zero, then the end.
async fn streams(model: &Arc<dyn DynTextModel>, id: &str) {
    let mut stream = model
        .stream_dyn(TextRequest::new(id).user("Say hi"))
        .await
        .unwrap_or_else(|e| panic!("Stream: {e}"));
    let (mut text, mut finishes, mut delta_after_finish, mut usage) =
        (String::new(), 0, false, None);
    while let Some(item) = stream.next().await {
        match item.unwrap_or_else(|e| panic!("Stream: a normal stream failed: {e}")) {
            TextChunk::Delta(d) => {
                delta_after_finish |= finishes > 0;
                text.push_str(&d);
            }
            TextChunk::Finish(_) => finishes += 1,
            TextChunk::Usage(u) => usage = Some(u),
            TextChunk::ToolCall { .. } => panic!("Stream: a tool call nobody offered"),
        }
    }
    assert!(!text.is_empty(), "Stream: no text");
    assert_eq!(finishes, 1, "Stream: exactly one finish");
    assert!(!delta_after_finish, "Stream: text after the finish");
    if let Some(u) = usage {
        assert!(u.total_tokens() > 0, "Stream: a usage of zero");
    }
}

/// A stream cut before its normal end must end with [`ErrorKind::StreamInterrupted`].
async fn stream_is_cut(model: &Arc<dyn DynTextModel>, id: &str) {
    let mut stream = model
        .stream_dyn(TextRequest::new(id).user("Say hi"))
        .await
        .unwrap_or_else(|e| panic!("StreamCut: failed before the first byte: {e}"));
    let mut last_error = None;
    while let Some(item) = stream.next().await {
        if let Err(e) = item {
            last_error = Some(e);
        }
    }
    let e = last_error.expect("StreamCut: a cut stream must end with an error, not cleanly");
    assert_eq!(e.kind(), &ErrorKind::StreamInterrupted, "StreamCut: {e}");
}

/// What every provider's error of HTTP `status` must be: the kind the router decides on, the
/// provider and status attributed, a message, and the body kept for diagnosis.
pub fn error_is_classified(provider: &str, status: u16, err: &crate::Error) {
    let ok = match status {
        400 => err.kind() == &ErrorKind::InvalidRequest,
        401 | 403 => err.kind() == &ErrorKind::Auth,
        404 => err.kind() == &ErrorKind::NotFound,
        429 => matches!(
            err.kind(),
            ErrorKind::RateLimited { .. } | ErrorKind::QuotaExceeded
        ),
        500..=599 => matches!(err.kind(), ErrorKind::Upstream { .. } | ErrorKind::Timeout),
        _ => true,
    };
    assert!(ok, "HTTP {status} classified as {:?}: {err}", err.kind());
    if status >= 500 || matches!(err.kind(), ErrorKind::RateLimited { .. }) {
        assert!(err.is_retryable(), "HTTP {status} must be retryable: {err}");
    } else {
        assert!(
            !err.is_retryable(),
            "HTTP {status} must not be retried: {err}"
        );
    }
    assert_eq!(
        err.provider(),
        provider,
        "HTTP {status}: provider not named"
    );
    assert_eq!(err.status(), Some(status), "HTTP {status}: status not kept");
    assert!(!err.message().is_empty(), "HTTP {status}: no message");
    assert!(err.body().is_some(), "HTTP {status}: body not kept");
}

/// How a provider crate's client is configured, for [`client_settings`]: its builder's setters
/// and its constructors, as plain functions (`TavilyClient::builder`, `|b, k| b.api_key(k)`, ...).
pub struct ClientSettings<C, B> {
    /// The provider id errors are attributed to.
    pub provider: &'static str,
    /// The base URL a client gets when none is set.
    pub default_base_url: &'static str,
    /// A builder with nothing set.
    pub builder: fn() -> B,
    /// Sets the API key.
    pub api_key: fn(B, &str) -> B,
    /// Sets the base URL.
    pub base_url: fn(B, &str) -> B,
    /// Builds the client.
    pub build: fn(B) -> crate::Result<C>,
    /// Builds the client from a `[providers.<id>]` section.
    pub from_config: fn(&crate::ProviderConfig) -> crate::Result<C>,
    /// The client's base URL.
    pub client_base_url: fn(&C) -> &str,
}

/// The settings rules every provider client keeps (each builds on the shared
/// [`UpstreamBuilder`](crate::http::UpstreamBuilder), and each crate runs this on its own client):
/// the key never shows in `Debug` nor in errors; the base URL defaults and loses a trailing
/// slash; a missing or unusable key, or a base URL that is not a plain http(s) URL, is a
/// [`Config`](ErrorKind::Config) error of the provider that names neither; `from_config`
/// prefers the configured key and URL, and without a key is
/// [`Unavailable`](ErrorKind::Unavailable), naming the variable to set.
pub fn client_settings<C: std::fmt::Debug, B: std::fmt::Debug>(c: &ClientSettings<C, B>) {
    let keyed = |base: Option<&str>| {
        let builder = (c.api_key)((c.builder)(), "key-supersecret");
        match base {
            Some(url) => (c.base_url)(builder, url),
            None => builder,
        }
    };

    let builder = keyed(Some("http://127.0.0.1:9/"));
    let shown = format!("{builder:?}");
    assert!(!shown.contains("supersecret"), "{shown}");
    let client = (c.build)(builder).unwrap();
    let shown = format!("{client:?}");
    assert!(!shown.contains("supersecret"), "{shown}");
    assert!(shown.contains("http://127.0.0.1:9"), "{shown}");

    let default = (c.build)(keyed(None)).unwrap();
    assert_eq!((c.client_base_url)(&default), c.default_base_url);
    let custom = (c.build)(keyed(Some("http://localhost:8080/"))).unwrap();
    assert_eq!((c.client_base_url)(&custom), "http://localhost:8080");

    let bad = [
        (c.builder)(),
        (c.api_key)((c.builder)(), "  "),
        (c.api_key)((c.builder)(), "bad\nkey_secret"),
        keyed(Some("not a url")),
        keyed(Some("ftp://example.com")),
        keyed(Some("https://example.com/?key=abc")),
    ];
    for builder in bad {
        let err = (c.build)(builder).unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::Config, "{err}");
        assert_eq!(err.provider(), c.provider);
        let shown = format!("{err:?} {err}");
        assert!(!shown.contains("key_secret"), "{shown}");
        assert!(!shown.contains("supersecret"), "{shown}");
        assert!(!shown.contains("example.com"), "{shown}");
    }

    let unset = format!("GW_{}_TEST_SURELY_UNSET", c.provider.to_uppercase());
    let cfg = crate::ProviderConfig {
        api_key: Some("cfg-key".into()),
        api_key_env: Some(unset.clone()),
        base_url: Some("http://127.0.0.1:9/".into()),
        ..crate::ProviderConfig::default()
    };
    let client = (c.from_config)(&cfg).unwrap();
    assert_eq!((c.client_base_url)(&client), "http://127.0.0.1:9");
    let missing = crate::ProviderConfig {
        api_key_env: Some(unset.clone()),
        ..crate::ProviderConfig::default()
    };
    let err = (c.from_config)(&missing).unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Unavailable);
    assert_eq!(err.provider(), c.provider);
    assert!(err.to_string().contains(&unset), "{err}");
}

/// Headers from `(name, value)` pairs, for the error-classification tests of provider crates.
#[cfg(feature = "http")]
pub fn headers(pairs: &[(&'static str, &'static str)]) -> reqwest::header::HeaderMap {
    let mut h = reqwest::header::HeaderMap::new();
    for (name, value) in pairs {
        h.insert(*name, reqwest::header::HeaderValue::from_static(value));
    }
    h
}

/// A provider crate's recorded error answer, `tests/fixtures/errors/<name>` under `crate_dir`
/// (a JSON file `{"status", "headers", "json" | "text"}`): its status, headers and body.
///
/// # Panics
/// When the file is missing or not in that shape: a test's own mistake.
#[cfg(feature = "http")]
pub fn recorded_error(crate_dir: &str, name: &str) -> (u16, reqwest::header::HeaderMap, String) {
    use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
    use serde_json::Value;
    let path = format!("{crate_dir}/tests/fixtures/errors/{name}");
    let fixture: Value = std::fs::read_to_string(&path)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_else(|| panic!("{path}: not a readable recorded error"));
    let status = fixture["status"]
        .as_u64()
        .and_then(|s| u16::try_from(s).ok())
        .unwrap_or_else(|| panic!("{path}: no `status`"));
    let mut headers = HeaderMap::new();
    for (name, value) in fixture["headers"].as_object().into_iter().flatten() {
        let (Ok(name), Some(Ok(value))) = (
            HeaderName::from_bytes(name.as_bytes()),
            value.as_str().map(HeaderValue::from_str),
        ) else {
            panic!("{path}: header `{name}` is not a valid header");
        };
        headers.insert(name, value);
    }
    let body = match (&fixture["json"], &fixture["text"]) {
        (Value::Null, Value::String(text)) => text.clone(),
        (Value::Null, _) => String::new(),
        (json, _) => json.to_string(),
    };
    (status, headers, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TextCaps;

    #[test]
    fn cases_follow_capabilities() {
        let plain = cases(Some(TextCaps::default()), false);
        assert!(plain.contains(&Case::Stream) && !plain.contains(&Case::GenerateJson));
        assert!(!plain.contains(&Case::EmbedOne));
        let caps = TextCaps {
            streaming: false,
            json_object: true,
            ..TextCaps::default()
        };
        let some = cases(Some(caps), true);
        assert!(!some.contains(&Case::Stream) && some.contains(&Case::GenerateJson));
        assert!(some.contains(&Case::EmbedTwo));
        assert_eq!(cases(None, true), [Case::EmbedOne, Case::EmbedTwo]);
    }

    #[test]
    fn wav_checks() {
        let wav = one_second_wav();
        assert_eq!(wav.len(), 44 + 32_000);
        assert_eq!(wav_is_well_formed(&wav), Ok(()));
        assert!(wav_is_well_formed(&wav[..1000]).is_err());
        assert!(wav_is_well_formed(b"RIFF\x04\0\0\0WAVE").is_err());
        assert!(wav_is_well_formed(b"not a wav at all").is_err());
    }
}
