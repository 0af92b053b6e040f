//! `gateway speak` and `gateway transcribe`, the real binary, against a running gateway over a
//! mock Gemini: the speech lands in a WAV file that parses, and the transcript is printed.

mod support;

use std::process::Command;

use gw_mock::MockUpstream;
use gw_mock::fixture::UpstreamStep;
use serde_json::json;
use support::{config_for, open_store, start, user};

fn step(v: serde_json::Value) -> UpstreamStep {
    serde_json::from_value(v).expect("a valid upstream step")
}

#[tokio::test]
async fn speak_writes_a_wav_and_transcribe_prints_the_text() {
    let pcm = llm_gateway::encode_base64(&[0u8; 4_800]);
    let upstream = MockUpstream::start(vec![
        step(json!({
            "expect": {"path": "/v1beta/models/gemini-2.5-flash-preview-tts:generateContent"},
            "respond": {"json": {
                "candidates": [{"content": {"role": "model", "parts": [{"inlineData": {
                    "mimeType": "audio/L16;codec=pcm;rate=24000", "data": pcm}}]},
                    "finishReason": "STOP"}],
                "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 4, "totalTokenCount": 8,
                    "candidatesTokensDetails": [{"modality": "AUDIO", "tokenCount": 4}]}}}
        })),
        step(json!({
            "expect": {"path": "/v1beta/models/gemini-2.5-flash:generateContent"},
            "respond": {"json": {
                "candidates": [{"content": {"role": "model", "parts": [{"text": "Hi there."}]},
                                "finishReason": "STOP"}],
                "usageMetadata": {"promptTokenCount": 50, "candidatesTokenCount": 3, "totalTokenCount": 53}}}
        })),
    ])
    .await
    .unwrap();
    let store = open_store("sqlite::memory:").await;
    let (_, key) = user(&store, "pro").await;
    let server = start(&config_for(upstream.url()), Some(store)).await;
    let dir = std::env::temp_dir().join(support::unique("cli-audio"));
    std::fs::create_dir_all(&dir).unwrap();
    let wav = dir.join("hi.wav");

    let gateway = |args: Vec<String>| {
        let key = key.clone();
        let url = server.url.clone();
        tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_gateway"))
                .args(&args)
                .env("GATEWAY_URL", url)
                .env("GATEWAY_API_KEY", key)
                .output()
                .unwrap()
        })
    };
    let spoke = gateway(vec![
        "speak".into(),
        "Hi there.".into(),
        "--out".into(),
        wav.display().to_string(),
    ])
    .await
    .unwrap();
    let said = String::from_utf8_lossy(&spoke.stdout);
    assert!(
        spoke.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&spoke.stderr)
    );
    assert!(said.contains("4844 bytes"), "{said}");
    let audio = std::fs::read(&wav).unwrap();
    // A RIFF/WAVE file whose sizes add up: 44 bytes of header, then the PCM as Gemini sent it.
    assert_eq!(audio.len(), 44 + 4_800);
    assert_eq!(
        (&audio[..4], &audio[8..12], &audio[36..40]),
        (&b"RIFF"[..], &b"WAVE"[..], &b"data"[..])
    );
    assert_eq!(
        u32::from_le_bytes(audio[4..8].try_into().unwrap()),
        36 + 4_800
    );
    assert_eq!(u32::from_le_bytes(audio[40..44].try_into().unwrap()), 4_800);

    let heard = gateway(vec!["transcribe".into(), wav.display().to_string()])
        .await
        .unwrap();
    assert!(
        heard.status.success(),
        "{}",
        String::from_utf8_lossy(&heard.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&heard.stdout), "Hi there.\n");

    // A refusal comes back as the gateway's message, and nothing is written.
    let refused = gateway(vec![
        "speak".into(),
        "Hi".into(),
        "--voice".into(),
        "alloy".into(),
        "--out".into(),
        dir.join("no.wav").display().to_string(),
    ])
    .await
    .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("400"));
    assert!(!dir.join("no.wav").exists());
    assert!(upstream.verify().is_empty(), "{:?}", upstream.verify());
    let _ = std::fs::remove_dir_all(&dir);
}
