//! `gateway speak`, `gateway transcribe` and `gateway video`, the real binary, against a running
//! gateway over mock providers: the speech lands in a WAV file that parses, the transcript is
//! printed, and a video job is followed to its end (or resumed by id) and written to a file.

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

#[tokio::test]
async fn video_follows_a_job_to_its_file_and_resume_picks_one_up_by_id() {
    const TASK: &str = "6488c2754f6f4dfea924382fa14d11bd";
    const MODEL: &str = "wavespeed-ai/hunyuan-video-1.5/text-to-video";
    let video = b"\0\0\0\x18ftypmp42\0\0\0\0mp42isom";
    let file = || {
        step(json!({
            "expect": {"method": "GET", "path": "/predictions/0.mp4"},
            "respond": {"headers": {"content-type": "video/mp4"},
                        "base64": llm_gateway::encode_base64(video)}
        }))
    };
    let cdn = MockUpstream::start(vec![file(), file()]).await.unwrap();
    let task = |status: &str, outputs: serde_json::Value| {
        json!({"code": 200, "message": "success", "data": {"id": TASK, "model": MODEL,
               "outputs": outputs, "has_nsfw_contents": [], "status": status, "error": ""}})
    };
    let result = format!("/api/v3/predictions/{TASK}/result");
    let output = format!("{}/predictions/0.mp4", cdn.url());
    let upstream = MockUpstream::start(vec![
        step(
            json!({"expect": {"method": "POST", "path": format!("/api/v3/{MODEL}")},
                    "respond": {"json": task("created", json!([]))}}),
        ),
        step(json!({"expect": {"method": "GET", "path": result},
                    "respond": {"json": task("processing", json!([]))}})),
        step(json!({"expect": {"method": "GET", "path": result},
                    "respond": {"json": task("completed", json!([output]))}})),
    ])
    .await
    .unwrap();
    let u = upstream.url();
    let text = format!(
        "[jobs]\npoll_interval_ms = 0\n\
         [providers.wavespeed]\nbase_url = \"{u}\"\napi_key = \"provider-key\"\n\
         downloads = {{ allow_private = true }}\n"
    );
    let config = gw_server::Config::from_toml(&text, "test config", std::iter::empty()).unwrap();
    let store = open_store("sqlite::memory:").await;
    let (_, key) = user(&store, "pro").await;
    let server = start(&config, Some(store)).await;
    let dir = std::env::temp_dir().join(support::unique("cli-video"));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("fox.mp4");

    let run = |args: Vec<String>| {
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
    let made = run(vec![
        "video".into(),
        "A fox in the snow".into(),
        "--model".into(),
        format!("wavespeed/{MODEL}"),
        "--poll-ms".into(),
        "5".into(),
        "--out".into(),
        out.display().to_string(),
    ])
    .await
    .unwrap();
    let said = String::from_utf8_lossy(&made.stderr);
    assert!(made.status.success(), "{said}");
    // The job's id to resume with, then its states as they came (not a terminal: one per line).
    assert!(said.contains("gateway video --resume video_"), "{said}");
    assert!(
        said.contains("in_progress") && said.contains("completed"),
        "{said}"
    );
    assert_eq!(std::fs::read(&out).unwrap(), video);
    let id = said
        .split("--resume ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap()
        .to_owned();

    // Resuming by id follows the same job (no new submit, no new provider poll: it is
    // finished) and downloads it again.
    let again = dir.join("again.mp4");
    let resumed = run(vec![
        "video".into(),
        "--resume".into(),
        id,
        "--out".into(),
        again.display().to_string(),
    ])
    .await
    .unwrap();
    let said = String::from_utf8_lossy(&resumed.stderr);
    assert!(resumed.status.success(), "{said}");
    assert_eq!(std::fs::read(&again).unwrap(), video);
    assert!(upstream.verify().is_empty(), "{:?}", upstream.verify());
    assert!(cdn.verify().is_empty(), "{:?}", cdn.verify());
    let _ = std::fs::remove_dir_all(&dir);
}
