//! The public API against a mock Gemini: what goes on the wire, and what comes back.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use gateway_core::{
    DynTextModel, ErrorKind, FinishReason, ProviderConfig, Registry, ResponseFormat, TextChunk,
    TextModel, TextRequest, TokenUsage,
};
use gw_gemini::{GeminiClient, PROVIDER};
use gw_mock::MockUpstream;
use gw_mock::fixture::{Respond, UpstreamExpect, UpstreamStep};
use serde_json::{Value, json};

const KEY: &str = "AIza-test-key-123";
const MODEL: &str = "gemini-2.5-flash";

fn step(method: &str, query: Value, respond: Respond) -> UpstreamStep {
    UpstreamStep {
        expect: UpstreamExpect {
            method: Some("POST".into()),
            path: Some(format!("/v1beta/models/{MODEL}:{method}")),
            query: serde_json::from_value(query).unwrap(),
            headers: [("x-goog-api-key".to_owned(), json!(KEY))].into(),
            ..UpstreamExpect::default()
        },
        respond,
    }
}

fn generate_step(respond: Respond) -> UpstreamStep {
    step("generateContent", json!({}), respond)
}

fn stream_step(events: &[&str]) -> UpstreamStep {
    step(
        "streamGenerateContent",
        json!({"alt": "sse"}),
        Respond::sse(events.iter().copied()),
    )
}

fn client(mock: &MockUpstream) -> GeminiClient {
    GeminiClient::builder()
        .api_key(KEY)
        .base_url(mock.url())
        .build()
        .unwrap()
}

/// Every request carried the key in its header and nowhere in its URL, and matched its step.
fn assert_wire_clean(mock: &MockUpstream) {
    assert_eq!(mock.verify(), Vec::<String>::new());
    for got in mock.received() {
        assert_eq!(got.header("x-goog-api-key"), Some(KEY));
        assert!(
            got.query.iter().all(|(name, _)| name != "key"),
            "{:?}",
            got.query
        );
        assert!(!got.path.contains(KEY));
        assert!(got.query.iter().all(|(_, v)| !v.contains(KEY)));
    }
}

/// An error that names neither the key nor the mock's address.
fn assert_error_clean(err: &gateway_core::Error, mock: &MockUpstream) {
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains(KEY), "{shown}");
    assert!(!shown.contains(mock.url()), "{shown}");
    assert_eq!(err.provider(), PROVIDER);
}

fn error_body(code: u16, status: &str, message: &str) -> Value {
    json!({"error": {"code": code, "message": message, "status": status}})
}

#[tokio::test]
async fn generate_sends_the_documented_body_and_maps_the_answer() {
    let answer = json!({
        "candidates": [{
            "content": {"role": "model", "parts": [
                {"text": "The user wants colours.", "thought": true},
                {"text": "[\"red\",\"yellow\",\"blue\"]"}
            ]},
            "finishReason": "STOP",
            "index": 0
        }],
        "usageMetadata": {
            "promptTokenCount": 14, "cachedContentTokenCount": 4,
            "candidatesTokenCount": 9, "thoughtsTokenCount": 120, "totalTokenCount": 143
        },
        "modelVersion": "gemini-2.5-flash-001",
        "responseId": "resp-1"
    });
    let mut expected_step = generate_step(Respond::json(answer));
    expected_step
        .expect
        .headers
        .insert("content-type".into(), json!("application/json"));
    let mock = MockUpstream::start(vec![expected_step]).await.unwrap();
    let gemini = client(&mock);

    let schema = json!({"type": "array", "items": {"type": "string"}});
    let req = TextRequest::new(MODEL)
        .system("You are terse.")
        .user("Name three primary colours.")
        .temperature(0.2)
        .max_tokens(256)
        .response_format(ResponseFormat::JsonSchema {
            name: "colours".into(),
            schema: schema.clone(),
            strict: None,
        });
    let r = gemini.generate(req).await.unwrap();

    assert_eq!(r.content, "[\"red\",\"yellow\",\"blue\"]");
    assert_eq!(r.finish_reason, FinishReason::Stop);
    assert_eq!(r.id.as_deref(), Some("resp-1"));
    assert_eq!(r.model, "gemini-2.5-flash-001");
    assert_eq!(
        r.usage,
        TokenUsage {
            input_tokens: 14,
            output_tokens: 129,
            reasoning_tokens: 120,
            cached_input_tokens: 4,
        }
    );
    assert_wire_clean(&mock);
    assert_eq!(
        mock.received()[0].json().unwrap(),
        json!({
            "systemInstruction": {"parts": [{"text": "You are terse."}]},
            "contents": [{"role": "user", "parts": [{"text": "Name three primary colours."}]}],
            "generationConfig": {
                "temperature": 0.2,
                "maxOutputTokens": 256,
                "responseMimeType": "application/json",
                "responseJsonSchema": schema
            }
        })
    );
}

#[tokio::test]
async fn a_blocked_prompt_is_a_content_filtered_answer() {
    let mock = MockUpstream::start(vec![generate_step(Respond::json(json!({
        "promptFeedback": {"blockReason": "SAFETY"},
        "usageMetadata": {"promptTokenCount": 5, "totalTokenCount": 5}
    })))])
    .await
    .unwrap();
    let r = client(&mock)
        .generate(TextRequest::new(MODEL).user("something blocked"))
        .await
        .unwrap();
    assert_eq!(r.content, "");
    assert_eq!(r.finish_reason, FinishReason::ContentFilter);
    assert_eq!(r.model, MODEL);
    assert_eq!(r.usage.input_tokens, 5);
    assert_wire_clean(&mock);
}

#[tokio::test]
async fn stream_to_completion() {
    let mock = MockUpstream::start(vec![stream_step(&[
        r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"Red, "}]},"index":0}],"usageMetadata":{"promptTokenCount":8,"totalTokenCount":8},"modelVersion":"gemini-2.5-flash","responseId":"abc"}"#,
        r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"yellow and blue."}]},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":8,"candidatesTokenCount":6,"thoughtsTokenCount":40,"totalTokenCount":54},"modelVersion":"gemini-2.5-flash","responseId":"abc"}"#,
    ])])
    .await
    .unwrap();
    let gemini = client(&mock);
    let items: Vec<_> = gemini
        .stream(TextRequest::new(MODEL).user("Colours?"))
        .await
        .unwrap()
        .collect()
        .await;
    let chunks: Vec<TextChunk> = items.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        chunks,
        vec![
            TextChunk::Delta("Red, ".into()),
            TextChunk::Usage(TokenUsage {
                input_tokens: 8,
                ..TokenUsage::default()
            }),
            TextChunk::Delta("yellow and blue.".into()),
            TextChunk::Usage(TokenUsage {
                input_tokens: 8,
                output_tokens: 46,
                reasoning_tokens: 40,
                cached_input_tokens: 0,
            }),
            TextChunk::Finish(FinishReason::Stop),
        ]
    );
    assert_wire_clean(&mock);
    assert_eq!(
        mock.received()[0].json().unwrap(),
        json!({"contents": [{"role": "user", "parts": [{"text": "Colours?"}]}]})
    );
}

#[tokio::test]
async fn a_stream_cut_mid_way_ends_with_stream_interrupted() {
    let mock = MockUpstream::start(vec![stream_step(&[
        r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"Red, "}]},"index":0}]}"#,
        r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"yel"}]},"index":0}]}"#,
    ])])
    .await
    .unwrap();
    let gemini = client(&mock);
    let items: Vec<_> = gemini
        .stream(TextRequest::new(MODEL).user("Colours?"))
        .await
        .unwrap()
        .collect()
        .await;
    assert_eq!(items.len(), 3, "{items:?}");
    assert_eq!(
        items[0].as_ref().unwrap(),
        &TextChunk::Delta("Red, ".into())
    );
    assert_eq!(items[1].as_ref().unwrap(), &TextChunk::Delta("yel".into()));
    let err = items[2].as_ref().unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::StreamInterrupted);
    assert!(!err.is_retryable());
    assert_error_clean(err, &mock);
    assert_wire_clean(&mock);
}

#[tokio::test]
async fn an_error_event_inside_a_stream_is_an_error_item() {
    let mock = MockUpstream::start(vec![stream_step(&[
        r#"{"candidates":[{"content":{"parts":[{"text":"Hi"}]}}]}"#,
        r#"{"error":{"code":500,"message":"An internal error has occurred.","status":"INTERNAL"}}"#,
    ])])
    .await
    .unwrap();
    let items: Vec<_> = client(&mock)
        .stream(TextRequest::new(MODEL).user("hi"))
        .await
        .unwrap()
        .collect()
        .await;
    assert_eq!(items.len(), 2, "{items:?}");
    let err = items[1].as_ref().unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Upstream { status: 500 });
    assert_eq!(err.message(), "An internal error has occurred.");
}

#[tokio::test]
async fn a_429_with_retry_after_is_rate_limited_for_that_long() {
    let mock = MockUpstream::start(vec![
        generate_step(
            Respond::json(error_body(429, "RESOURCE_EXHAUSTED", "Resource exhausted."))
                .status(429)
                .header("retry-after", "7"),
        ),
        // The same before a stream's first byte: the outer Result fails.
        step(
            "streamGenerateContent",
            json!({"alt": "sse"}),
            Respond::json(error_body(429, "RESOURCE_EXHAUSTED", "Resource exhausted."))
                .status(429)
                .header("retry-after", "7"),
        ),
    ])
    .await
    .unwrap();
    let gemini = client(&mock);
    let expected = ErrorKind::RateLimited {
        retry_after: Some(Duration::from_secs(7)),
    };

    let err = gemini
        .generate(TextRequest::new(MODEL).user("hi"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &expected);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
    assert!(err.is_retryable());
    assert_eq!(err.status(), Some(429));
    assert_eq!(err.message(), "Resource exhausted.");
    assert_error_clean(&err, &mock);

    let Err(err) = gemini.stream(TextRequest::new(MODEL).user("hi")).await else {
        panic!("a 429 must fail the stream before its first item");
    };
    assert_eq!(err.kind(), &expected);
    assert_wire_clean(&mock);
}

#[tokio::test]
async fn a_503_is_upstream_503() {
    let overloaded =
        || Respond::json(error_body(503, "UNAVAILABLE", "The model is overloaded.")).status(503);
    let mock = MockUpstream::start(vec![
        generate_step(overloaded()),
        step("streamGenerateContent", json!({"alt": "sse"}), overloaded()),
    ])
    .await
    .unwrap();
    let gemini = client(&mock);

    let err = gemini
        .generate(TextRequest::new(MODEL).user("hi"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Upstream { status: 503 });
    assert!(err.is_retryable());
    assert_eq!(err.message(), "The model is overloaded.");
    assert_error_clean(&err, &mock);

    let Err(err) = gemini.stream(TextRequest::new(MODEL).user("hi")).await else {
        panic!("a 503 must fail the stream before its first item");
    };
    assert_eq!(err.kind(), &ErrorKind::Upstream { status: 503 });
    assert_wire_clean(&mock);
}

#[tokio::test]
async fn a_rejected_key_is_auth_and_never_echoed() {
    let body = json!({"error": {
        "code": 400,
        "message": "API key not valid. Please pass a valid API key.",
        "status": "INVALID_ARGUMENT",
        "details": [{
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "API_KEY_INVALID",
            "domain": "googleapis.com",
            "metadata": {"service": "generativelanguage.googleapis.com"}
        }]
    }});
    let mock = MockUpstream::start(vec![generate_step(Respond::json(body).status(400))])
        .await
        .unwrap();
    let err = client(&mock)
        .generate(TextRequest::new(MODEL).user("hi"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Auth);
    assert!(!err.is_retryable());
    assert_error_clean(&err, &mock);
    assert_wire_clean(&mock);
}

#[tokio::test]
async fn invalid_requests_fail_before_any_io() {
    let mock = MockUpstream::start(vec![]).await.unwrap();
    let gemini = client(&mock);
    for req in [
        TextRequest::new(MODEL).system("only a system prompt"),
        TextRequest::new("../other?x=1").user("hi"),
    ] {
        let err = gemini.generate(req.clone()).await.unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::InvalidRequest);
        let Err(err) = gemini.stream(req).await else {
            panic!("an invalid request must not stream");
        };
        assert_eq!(err.kind(), &ErrorKind::InvalidRequest);
    }
    assert!(mock.received().is_empty());
}

#[tokio::test]
async fn register_adds_a_working_dyn_provider() {
    let mock = MockUpstream::start(vec![generate_step(Respond::json(json!({
        "candidates": [{"content": {"parts": [{"text": "hello"}]}, "finishReason": "STOP"}]
    })))])
    .await
    .unwrap();
    let cfg = ProviderConfig {
        api_key: Some(KEY.into()),
        base_url: Some(format!("{}/", mock.url())),
        models: vec![MODEL.into()],
        ..ProviderConfig::default()
    };
    let mut reg = Registry::new();
    gw_gemini::register(&mut reg, &cfg).unwrap();
    assert_eq!(reg.providers(), vec![PROVIDER]);
    assert_eq!(reg.model_names(), vec![format!("gemini/{MODEL}")]);

    let model: &Arc<dyn DynTextModel> = reg.text(PROVIDER).unwrap();
    let caps = model.capabilities_dyn();
    assert!(caps.streaming && caps.json_object && caps.json_schema);
    let r = model
        .generate_dyn(TextRequest::new(MODEL).user("hi"))
        .await
        .unwrap();
    assert_eq!(r.content, "hello");
    assert_wire_clean(&mock);
}

// --- Images ---------------------------------------------------------------------------------

fn image_step(model: &str, method: &str, json: Option<Value>, file: &str) -> UpstreamStep {
    UpstreamStep {
        expect: UpstreamExpect {
            method: Some("POST".into()),
            path: Some(format!("/v1beta/models/{model}:{method}")),
            headers: [("x-goog-api-key".to_owned(), json!(KEY))].into(),
            json,
            ..UpstreamExpect::default()
        },
        respond: Respond::recorded(env!("CARGO_MANIFEST_DIR"), file),
    }
}

#[tokio::test]
async fn imagen_draws_two_images_at_a_ratio() {
    use gateway_core::{ImageModel, ImageRequest, MediaOutput};
    let model = "imagen-4.0-generate-001";
    let mock = MockUpstream::start(vec![image_step(
        model,
        "predict",
        Some(json!({
            "instances": [{"prompt": "A lighthouse at dusk"}],
            "parameters": {"sampleCount": 2, "aspectRatio": "16:9", "includeRaiReason": true}
        })),
        "image/imagen_two.json",
    )])
    .await
    .unwrap();
    let gemini = client(&mock);
    let mut req = ImageRequest::new(model, "A lighthouse at dusk");
    req.n = Some(2);
    req.size = Some("1408x768".into());
    gemini.check_generation(&req).unwrap();
    assert_eq!(gemini.generation_billing(&req).units, 2);
    let r = gemini.generate_image(req).await.unwrap();
    assert_eq!(r.images.len(), 2);
    assert!(matches!(&r.images[1], MediaOutput::Bytes { mime, .. } if mime == "image/png"));
    assert_eq!(r.billing.units, 2);
    assert_wire_clean(&mock);
}

#[tokio::test]
async fn a_retired_imagen_model_is_not_found_and_says_why() {
    use gateway_core::{ImageModel, ImageRequest};
    let model = "imagen-3.0-generate-002";
    let mock = MockUpstream::start(vec![image_step(
        model,
        "predict",
        None,
        "image/imagen_404.json",
    )])
    .await
    .unwrap();
    let e = client(&mock)
        .generate_image(ImageRequest::new(model, "A fox"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), &ErrorKind::NotFound);
    assert_eq!(e.status(), Some(404));
    assert!(e.message().contains("retires Imagen"), "{e}");
    assert!(
        e.message().contains("is not found for API version v1beta"),
        "{e}"
    );
    assert!(e.body().is_some());
    assert_wire_clean(&mock);
}

#[tokio::test]
async fn imagen_filtering_everything_is_a_content_filter() {
    use gateway_core::{ImageModel, ImageRequest};
    let model = "imagen-4.0-fast-generate-001";
    let mock = MockUpstream::start(vec![image_step(
        model,
        "predict",
        None,
        "image/imagen_filtered.json",
    )])
    .await
    .unwrap();
    let e = client(&mock)
        .generate_image(ImageRequest::new(model, "A fox"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), &ErrorKind::ContentFiltered);
    assert!(!e.is_retryable());
    assert_wire_clean(&mock);
}

#[tokio::test]
async fn flash_image_draws_from_generate_content() {
    use gateway_core::{ImageModel, ImageRequest, PriceUnit};
    let model = "gemini-2.5-flash-image";
    let mock = MockUpstream::start(vec![image_step(
        model,
        "generateContent",
        Some(json!({
            "contents": [{"role": "user", "parts": [{"text": "A fox"}]}],
            "generationConfig": {"responseModalities": ["IMAGE"], "imageConfig": {"aspectRatio": "3:2"}}
        })),
        "image/flash_image_ok.json",
    )])
    .await
    .unwrap();
    let mut req = ImageRequest::new(model, "A fox");
    req.size = Some("1248x832".into());
    let r = client(&mock).generate_image(req).await.unwrap();
    assert_eq!(r.images.len(), 1);
    assert_eq!(r.usage.tokens.input_tokens, 9);
    let image = &r.billing.charges[1];
    assert_eq!(
        (image.unit, image.quantity, image.modality.as_deref()),
        (PriceUnit::OutputToken, 1290, Some("image"))
    );
    assert_wire_clean(&mock);
}

#[tokio::test]
async fn an_image_withheld_for_safety_is_a_content_filter() {
    use gateway_core::{ImageModel, ImageRequest};
    let model = "gemini-2.5-flash-image";
    let mock = MockUpstream::start(vec![image_step(
        model,
        "generateContent",
        None,
        "image/image_safety.json",
    )])
    .await
    .unwrap();
    let e = client(&mock)
        .generate_image(ImageRequest::new(model, "A fox"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), &ErrorKind::ContentFiltered);
    assert_wire_clean(&mock);
}

#[tokio::test]
async fn sizes_a_model_does_not_draw_are_refused_without_a_call() {
    use gateway_core::{ImageModel, ImageRequest};
    let mock = MockUpstream::start(vec![]).await.unwrap();
    let gemini = client(&mock);
    for model in ["imagen-4.0-generate-001", "gemini-2.5-flash-image"] {
        let mut req = ImageRequest::new(model, "A fox");
        req.size = Some("1792x1024".into());
        let e = gemini.check_generation(&req).unwrap_err();
        assert_eq!(
            (e.kind(), e.param()),
            (&ErrorKind::Unsupported, Some("size"))
        );
        let e = gemini.generate_image(req).await.unwrap_err();
        assert_eq!(e.param(), Some("size"));
    }
    assert!(mock.received().is_empty());
}

#[tokio::test]
async fn register_announces_image_models_for_images() {
    use gateway_core::{ImageRequest, Service};
    let mock = MockUpstream::start(vec![image_step(
        "gemini-2.5-flash-image",
        "generateContent",
        None,
        "image/flash_image_ok.json",
    )])
    .await
    .unwrap();
    let cfg = ProviderConfig {
        api_key: Some(KEY.into()),
        base_url: Some(mock.url().to_owned()),
        models: vec![
            MODEL.into(),
            "imagen-4.0-generate-001".into(),
            "gemini-2.5-flash-image".into(),
        ],
        ..ProviderConfig::default()
    };
    let mut reg = Registry::new();
    gw_gemini::register(&mut reg, &cfg).unwrap();
    let services: Vec<(String, Vec<Service>)> = reg
        .models()
        .map(|(route, s)| (route.to_string(), s.iter().copied().collect()))
        .collect();
    assert_eq!(
        services,
        vec![
            (format!("gemini/{MODEL}"), vec![Service::Chat]),
            (
                "gemini/gemini-2.5-flash-image".into(),
                vec![Service::Images]
            ),
            (
                "gemini/imagen-4.0-generate-001".into(),
                vec![Service::Images]
            ),
        ]
    );
    let images = reg.image(PROVIDER).unwrap();
    let r = images
        .generate_image_dyn(ImageRequest::new("gemini-2.5-flash-image", "A fox"))
        .await
        .unwrap();
    assert_eq!(r.images.len(), 1);
    // The catalog prices the answer: input tokens and image tokens.
    let cost = reg
        .prices()
        .charges_cost(PROVIDER, "gemini-2.5-flash-image", &r.billing.charges)
        .unwrap();
    assert_eq!(cost.to_string(), "0.0387027");
}

// --- Speech and transcription ---------------------------------------------------------------

const TTS: &str = "gemini-2.5-flash-preview-tts";

#[tokio::test]
async fn speech_is_generate_content_with_audio_output_wrapped_in_wav() {
    use gateway_core::{SpeechModel, SpeechRequest, testing::wav_is_well_formed};
    let mock = MockUpstream::start(vec![image_step(
        TTS,
        "generateContent",
        Some(json!({
            "contents": [{"role": "user", "parts": [{"text": "Say cheerfully: Have a wonderful day!"}]}],
            "generationConfig": {
                "responseModalities": ["AUDIO"],
                "speechConfig": {"voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Zephyr"}}}
            }
        })),
        "speech/tts_ok.json",
    )])
    .await
    .unwrap();
    let gemini = client(&mock);
    let mut req = SpeechRequest::new(TTS, "Have a wonderful day!");
    req.voice = Some("zephyr".into());
    req.options
        .insert("instructions".into(), json!("Say cheerfully"));
    gemini.check_speech(&req).unwrap();
    // 21 characters read at 5 a second.
    assert_eq!(gemini.speech_billing(&req).units, 5);
    let r = gemini.speak(req).await.unwrap();
    assert_eq!(r.mime, "audio/wav");
    // 0.1 s of 24 kHz 16-bit PCM: 4800 bytes behind a 44-byte header.
    assert_eq!(r.audio.len(), 44 + 4800);
    wav_is_well_formed(&r.audio).unwrap();
    assert_eq!(&r.audio[24..28], &24_000u32.to_le_bytes());
    assert_eq!(r.billing.units, 1);
    assert_wire_clean(&mock);
    // The catalog prices it: 9 text tokens at $0.50 and 4 audio tokens at $10 per 1M.
    let prices = gateway_core::PriceCatalog::from_toml(gw_gemini::PRICES, "pricing.toml").unwrap();
    let cost = prices
        .charges_cost(PROVIDER, TTS, &r.billing.charges)
        .unwrap();
    assert_eq!(cost.to_string(), "0.0000445");
}

#[tokio::test]
async fn speech_as_pcm_is_the_bytes_gemini_sent() {
    use gateway_core::{SpeechModel, SpeechRequest};
    let mock = MockUpstream::start(vec![image_step(
        TTS,
        "generateContent",
        None,
        "speech/tts_ok.json",
    )])
    .await
    .unwrap();
    let mut req = SpeechRequest::new(TTS, "Hello");
    req.format = Some("pcm".into());
    let r = client(&mock).speak(req).await.unwrap();
    assert_eq!(r.mime, "audio/pcm;rate=24000");
    assert_eq!(r.audio.len(), 4800);
    assert_wire_clean(&mock);
}

#[tokio::test]
async fn speech_refusals_make_no_call() {
    use gateway_core::{SpeechModel, SpeechRequest};
    let mock = MockUpstream::start(vec![]).await.unwrap();
    let gemini = client(&mock);
    for (field, change) in [
        (
            "voice",
            (|r: &mut SpeechRequest| r.voice = Some("alloy".into())) as fn(&mut _),
        ),
        ("response_format", |r| r.format = Some("mp3".into())),
        ("speed", |r| r.speed = Some(2.0)),
    ] {
        let mut req = SpeechRequest::new(TTS, "Hello");
        change(&mut req);
        let e = gemini.speak(req).await.unwrap_err();
        assert_eq!(e.kind(), &ErrorKind::Unsupported, "{e}");
        assert_eq!(e.param(), Some(field));
    }
    assert!(mock.received().is_empty());
}

fn one_second_wav() -> Vec<u8> {
    gateway_core::testing::one_second_wav()
}

#[tokio::test]
async fn transcription_sends_small_audio_inline() {
    use gateway_core::{MediaInput, TranscriptionModel, TranscriptionRequest};
    let wav = one_second_wav();
    let mock = MockUpstream::start(vec![image_step(
        MODEL,
        "generateContent",
        Some(json!({
            "contents": [{"role": "user", "parts": [
                {"text": "<any>"},
                {"inlineData": {"mimeType": "audio/wav", "data": gateway_core::encode_base64(&wav)}}
            ]}],
            "generationConfig": {"thinkingConfig": {"thinkingBudget": 0}}
        })),
        "transcription/transcript_ok.json",
    )])
    .await
    .unwrap();
    let gemini = client(&mock);
    // Declared as something else: the bytes decide.
    let mut req =
        TranscriptionRequest::new(MODEL, MediaInput::bytes(wav, "application/octet-stream"));
    req.language = Some("en".into());
    gemini.check_transcription(&req).unwrap();
    assert_eq!(gemini.transcription_billing(&req).units, 1);
    let r = gemini.transcribe(req).await.unwrap();
    assert_eq!(r.text, "Hello, and thank you for calling.");
    assert_eq!(r.language.as_deref(), Some("en"));
    assert_eq!(r.duration, Some(Duration::from_secs(1)));
    assert!(r.segments.is_empty());
    assert_eq!(r.billing.units, 1);
    assert_wire_clean(&mock);
    let text = mock.received()[0].json().unwrap()["contents"][0]["parts"][0]["text"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        text.contains("Transcribe") && text.contains("`en`"),
        "{text}"
    );
    // Audio input at $1.00, the instruction at $0.30 and the transcript at $2.50 per 1M.
    let prices = gateway_core::PriceCatalog::from_toml(gw_gemini::PRICES, "pricing.toml").unwrap();
    let cost = prices
        .charges_cost(PROVIDER, MODEL, &r.billing.charges)
        .unwrap();
    assert_eq!(cost.to_string(), "0.0000652");
}

#[tokio::test]
async fn transcription_uploads_large_audio_through_the_files_api() {
    use gateway_core::{MediaInput, TranscriptionModel, TranscriptionRequest};
    let wav = one_second_wav();
    let uri = "https://generativelanguage.googleapis.com/v1beta/files/abc-123";
    let start = UpstreamStep {
        expect: UpstreamExpect {
            method: Some("POST".into()),
            path: Some("/upload/v1beta/files".into()),
            headers: [
                ("x-goog-api-key".to_owned(), json!(KEY)),
                ("x-goog-upload-protocol".to_owned(), json!("resumable")),
                ("x-goog-upload-command".to_owned(), json!("start")),
                (
                    "x-goog-upload-header-content-length".to_owned(),
                    json!(wav.len().to_string()),
                ),
                ("x-goog-upload-header-content-type".to_owned(), json!("audio/wav")),
            ]
            .into(),
            json: Some(json!({"file": {"displayName": "<any>"}})),
            ..UpstreamExpect::default()
        },
        // Google answers an absolute URL on its own host; the client keeps its path and query.
        respond: Respond::json(json!({})).header(
            "x-goog-upload-url",
            "https://generativelanguage.googleapis.com/upload/v1beta/files?upload_id=UP-1&upload_protocol=resumable",
        ),
    };
    let upload = UpstreamStep {
        expect: UpstreamExpect {
            method: Some("POST".into()),
            path: Some("/upload/v1beta/files".into()),
            query: serde_json::from_value(json!({"upload_id": "UP-1"})).unwrap(),
            headers: [
                ("x-goog-api-key".to_owned(), json!(KEY)),
                (
                    "x-goog-upload-command".to_owned(),
                    json!("upload, finalize"),
                ),
                ("x-goog-upload-offset".to_owned(), json!("0")),
            ]
            .into(),
            ..UpstreamExpect::default()
        },
        respond: Respond::json(json!({"file": {
            "name": "files/abc-123", "mimeType": "audio/wav", "sizeBytes": wav.len().to_string(),
            "uri": uri, "state": "ACTIVE"
        }})),
    };
    let generate = image_step(
        MODEL,
        "generateContent",
        Some(json!({"contents": [{"role": "user", "parts": [
            {"text": "<any>"},
            {"fileData": {"mimeType": "audio/wav", "fileUri": uri}}
        ]}]})),
        "transcription/transcript_ok.json",
    );
    let mock = MockUpstream::start(vec![start, upload, generate])
        .await
        .unwrap();
    let gemini = GeminiClient::builder()
        .api_key(KEY)
        .base_url(mock.url())
        .inline_audio_max_bytes(1000)
        .build()
        .unwrap();
    let req = TranscriptionRequest::new(MODEL, MediaInput::bytes(wav.clone(), "audio/wav"));
    let r = gemini.transcribe(req).await.unwrap();
    assert_eq!(r.text, "Hello, and thank you for calling.");
    assert_wire_clean(&mock);
    // The bytes went up whole, raw.
    assert_eq!(&mock.received()[1].body[..], &wav[..]);
}

#[tokio::test]
async fn a_failed_upload_start_is_classified() {
    use gateway_core::{MediaInput, TranscriptionModel, TranscriptionRequest};
    let mock = MockUpstream::start(vec![UpstreamStep {
        expect: UpstreamExpect {
            path: Some("/upload/v1beta/files".into()),
            ..UpstreamExpect::default()
        },
        respond: Respond::recorded(env!("CARGO_MANIFEST_DIR"), "errors/503.json"),
    }])
    .await
    .unwrap();
    let gemini = GeminiClient::builder()
        .api_key(KEY)
        .base_url(mock.url())
        .inline_audio_max_bytes(10)
        .build()
        .unwrap();
    let req = TranscriptionRequest::new(MODEL, MediaInput::bytes(one_second_wav(), "audio/wav"));
    let e = gemini.transcribe(req).await.unwrap_err();
    assert!(e.is_retryable(), "{e}");
    assert_error_clean(&e, &mock);
    assert_wire_clean(&mock);
}

#[tokio::test]
async fn audio_gemini_cannot_read_is_refused_without_a_call() {
    use gateway_core::{MediaInput, TranscriptionModel, TranscriptionRequest};
    let mock = MockUpstream::start(vec![]).await.unwrap();
    let req = TranscriptionRequest::new(
        MODEL,
        MediaInput::bytes(&b"%PDF-1.7 not audio at all"[..], "audio/mpeg"),
    );
    let e = client(&mock).transcribe(req).await.unwrap_err();
    assert_eq!(e.kind(), &ErrorKind::Unsupported);
    assert_eq!(e.param(), Some("file"));
    assert!(mock.received().is_empty());
}

#[tokio::test]
async fn register_announces_tts_models_for_speech() {
    use gateway_core::Service;
    let cfg = ProviderConfig {
        api_key: Some(KEY.into()),
        models: vec![MODEL.into(), TTS.into()],
        ..ProviderConfig::default()
    };
    let mut reg = Registry::new();
    gw_gemini::register(&mut reg, &cfg).unwrap();
    let services: Vec<(String, Vec<Service>)> = reg
        .models()
        .map(|(route, s)| (route.to_string(), s.iter().copied().collect()))
        .collect();
    assert_eq!(
        services,
        vec![
            (format!("gemini/{MODEL}"), vec![Service::Chat]),
            (format!("gemini/{TTS}"), vec![Service::Speech]),
        ]
    );
    assert!(reg.speech(PROVIDER).is_some() && reg.transcription(PROVIDER).is_some());
}
