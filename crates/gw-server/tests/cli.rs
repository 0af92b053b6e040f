//! `gateway speak`, `gateway transcribe`, `gateway video` and `gateway tune`, the real binary,
//! against a running gateway over mock providers: the speech lands in a WAV file that parses, the
//! transcript is printed, a video job is followed to its end (or resumed by id, or stopped with
//! Ctrl-C) and written to a file, and a LoRA training is followed (stopped with Ctrl-C, resumed by
//! id) to the name of its model.

mod support;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

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

/// WaveSpeed reports no percentage: the CLI shows the job's status and the time spent, no made-up
/// `0%`; Ctrl-C stops the waiting (not the job) with the command that resumes it, and exit code
/// 130, as a shell reports a process that SIGINT ended.
#[tokio::test]
async fn video_shows_no_unknown_percent_and_ctrl_c_exits_130() {
    const TASK: &str = "6488c2754f6f4dfea924382fa14d11bd";
    const MODEL: &str = "wavespeed-ai/hunyuan-video-1.5/text-to-video";
    let task = |status: &str| {
        json!({"code": 200, "message": "success", "data": {"id": TASK, "model": MODEL,
               "outputs": [], "has_nsfw_contents": [], "status": status, "error": ""}})
    };
    let upstream = MockUpstream::start(vec![
        step(
            json!({"expect": {"method": "POST", "path": format!("/api/v3/{MODEL}")},
                    "respond": {"json": task("created")}}),
        ),
        step(
            json!({"expect": {"method": "GET", "path": format!("/api/v3/predictions/{TASK}/result")},
                    "respond": {"json": task("processing")}}),
        ),
    ])
    .await
    .unwrap();
    let text = format!(
        "[jobs]\npoll_interval_ms = 0\n\
         [providers.wavespeed]\nbase_url = \"{}\"\napi_key = \"provider-key\"\n",
        upstream.url()
    );
    let config = gw_server::Config::from_toml(&text, "test config", std::iter::empty()).unwrap();
    let store = open_store("sqlite::memory:").await;
    let (_, key) = user(&store, "pro").await;
    let server = start(&config, Some(store)).await;
    let dir = std::env::temp_dir().join(support::unique("cli-video-stop"));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("fox.mp4");
    let args: Vec<String> = vec![
        "video".into(),
        "A fox in the snow".into(),
        "--model".into(),
        format!("wavespeed/{MODEL}"),
        "--poll-ms".into(),
        "60000".into(),
        "--out".into(),
        out.display().to_string(),
    ];
    let stopped = interrupt_once(&args, &server.url, &key, "in_progress").await;
    let said = &stopped.stderr;
    assert_eq!(stopped.code, Some(130), "{said}");
    assert!(stopped.stdout.is_empty(), "{}", stopped.stdout);
    // Status and time, no bar and no percent: the provider reported none.
    assert!(said.contains("in_progress  00:0"), "{said}");
    assert!(!said.contains('%') && !said.contains("[...."), "{said}");
    assert!(
        said.contains("stopped waiting; the job goes on: gateway video --resume video_"),
        "{said}"
    );
    assert!(said.contains(&format!("--out {}", out.display())), "{said}");
    assert!(!out.exists(), "a file was written");
    assert!(upstream.verify().is_empty(), "{:?}", upstream.verify());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A zip of `entries` (name, contents), stored uncompressed: local headers, the central
/// directory and its end record (APPNOTE.TXT 4.3,
/// <https://pkware.cachefly.net/webdocs/casestudies/APPNOTE.TXT>). The CRCs are left 0: nothing
/// here unpacks it; the gateway reads its directory, the trainer is a mock.
fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let u16le = |n: usize| u16::try_from(n).unwrap().to_le_bytes();
    let u32le = |n: usize| u32::try_from(n).unwrap().to_le_bytes();
    let (mut out, mut central) = (Vec::new(), Vec::new());
    for (name, data) in entries {
        let offset = out.len();
        out.extend_from_slice(b"PK\x03\x04");
        out.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        out.extend_from_slice(&u32le(data.len()));
        out.extend_from_slice(&u32le(data.len()));
        out.extend_from_slice(&u16le(name.len()));
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);
        central.extend_from_slice(b"PK\x01\x02");
        central.extend_from_slice(&[20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        central.extend_from_slice(&u32le(data.len()));
        central.extend_from_slice(&u32le(data.len()));
        central.extend_from_slice(&u16le(name.len()));
        central.extend_from_slice(&[0; 12]);
        central.extend_from_slice(&u32le(offset));
        central.extend_from_slice(name.as_bytes());
    }
    let directory_at = out.len();
    out.extend_from_slice(&central);
    out.extend_from_slice(b"PK\x05\x06\0\0\0\0");
    out.extend_from_slice(&u16le(entries.len()));
    out.extend_from_slice(&u16le(entries.len()));
    out.extend_from_slice(&u32le(central.len()));
    out.extend_from_slice(&u32le(directory_at));
    out.extend_from_slice(&[0, 0]);
    out
}

/// The gateway's answer to a command: exit code, stdout, stderr.
struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `gateway` with `args` against `url` as `key`, and once a progress line starts with
/// `status` (the CLI then waits a minute before its next poll), interrupts it (SIGINT, as
/// Ctrl-C), and returns what it said and its exit code.
async fn interrupt_once(args: &[String], url: &str, key: &str, status: &'static str) -> Ran {
    let (args, url, key) = (args.to_vec(), url.to_owned(), key.to_owned());
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_gateway"))
            .args(&args)
            .env("GATEWAY_URL", url)
            .env("GATEWAY_API_KEY", key)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut said = String::new();
        while !said.lines().any(|l| l.starts_with(status)) {
            if stderr.read_line(&mut said).unwrap() == 0 {
                break;
            }
        }
        let interrupted = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(interrupted.success(), "kill -INT failed");
        stderr.read_to_string(&mut said).unwrap();
        let mut stdout = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut stdout)
            .unwrap();
        Ran {
            code: child.wait().unwrap().code(),
            stdout,
            stderr: said,
        }
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn tune_follows_a_training_to_its_model_through_ctrl_c_and_resume() {
    const TASK: &str = "6488c2754f6f4dfea924382fa14d11bd";
    const FAILED_TASK: &str = "5c9b1d2e3f4a4b6c8d7e9f0a1b2c3d4e";
    const TRAINER: &str = "wavespeed-ai/flux-dev-lora-trainer";
    let lora = b"LoRA weights: a safetensors file in a real run".to_vec();
    let zip = zip_of(&[
        ("me/1.jpg", b"\xff\xd8\xff\xe0 a photo"),
        ("me/1.txt", b"p3r5on smiling"),
        ("me/2.png", b"\x89PNG\r\n\x1a\n another"),
        ("me/3.jpg", b"\xff\xd8\xff\xe0 a third"),
        ("me/4.webp", b"RIFF\0\0\0\0WEBP a fourth"),
    ]);
    // The run's options as the CLI passes them, and as the trainer must get them.
    let options = json!({"trigger_word": "p3r5on", "steps": 1000, "lora_rank": 16,
                         "learning_rate": 0.0004});
    let price = json!({"code": 200, "message": "success", "data": {"model_id": TRAINER,
        "price": 1.25, "discounted_price": 1.25, "currency": "USD"}});
    // The shape of crates/gw-wavespeed/tests/fixtures/submit/created.json (a recorded submit
    // answer), for the trainer.
    let task = |id: &str, status: &str, outputs: serde_json::Value, error: &str| {
        json!({"code": 200, "message": "success", "data": {"id": id, "model": TRAINER,
            "outputs": outputs,
            "urls": {"get": format!("https://api.wavespeed.ai/api/v3/predictions/{id}/result")},
            "has_nsfw_contents": [], "status": status, "created_at": "2025-09-29T23:09:43.027Z",
            "error": error, "executionTime": 0, "timings": {"inference": 0}}})
    };
    let result = |id: &str| format!("/api/v3/predictions/{id}/result");
    let mut with_data = options.clone();
    with_data["data"] = json!("https://files.example/d.zip");
    let hosted = "https://files.example/photos.zip";
    let lora_b64 = llm_gateway::encode_base64(&lora);
    let upstream = MockUpstream::start_with(|url| {
        vec![
            // 1. The zip's job: quoted with its inputs, uploaded, submitted, polled (Ctrl-C),
            // then polled again (--resume) and its weights copied.
            step(json!({"expect": {"method": "POST", "path": "/api/v3/model/price",
                                   "json": {"model_id": TRAINER, "inputs": options}},
                        "respond": {"json": price}})),
            step(json!({"expect": {"method": "POST", "path": "/api/v3/media/upload/binary"},
                        "respond": {"json": {"code": 200, "message": "success",
                                             "data": {"download_url": "https://files.example/d.zip"}}}})),
            step(json!({"expect": {"method": "POST", "path": format!("/api/v3/{TRAINER}"),
                                   "json": with_data},
                        "respond": {"json": task(TASK, "created", json!([]), "")}})),
            step(json!({"expect": {"method": "GET", "path": result(TASK)},
                        "respond": {"json": task(TASK, "processing", json!([]), "")}})),
            step(json!({"expect": {"method": "GET", "path": result(TASK)},
                        "respond": {"json": task(TASK, "completed",
                                                 json!([format!("{url}/lora.safetensors")]), "")}})),
            step(json!({"expect": {"method": "GET", "path": "/lora.safetensors"},
                        "respond": {"headers": {"content-type": "application/octet-stream"},
                                    "base64": lora_b64}})),
            // 2. A zip the client hosts: no upload, the URL is the trainer's data; the run fails.
            step(json!({"expect": {"method": "POST", "path": "/api/v3/model/price",
                                   "json": {"model_id": TRAINER, "inputs": {"steps": 1000, "data": hosted}}},
                        "respond": {"json": price}})),
            step(json!({"expect": {"method": "POST", "path": format!("/api/v3/{TRAINER}"),
                                   "json": {"data": hosted, "steps": 1000}},
                        "respond": {"json": task(FAILED_TASK, "created", json!([]), "")}})),
            step(json!({"expect": {"method": "GET", "path": result(FAILED_TASK)},
                        "respond": {"json": task(FAILED_TASK, "failed", json!([]),
                                                 "not enough faces in the images")}})),
        ]
    })
    .await
    .unwrap();
    let dir = std::env::temp_dir().join(support::unique("cli-tune"));
    std::fs::create_dir_all(&dir).unwrap();
    let media = dir.join("media");
    let text = format!(
        "[jobs]\npoll_interval_ms = 0\n\
         [media]\ndir = \"{}\"\n\
         [providers.wavespeed]\nbase_url = \"{}\"\napi_key = \"provider-key\"\n\
         downloads = {{ allow_private = true }}\n",
        media.display(),
        upstream.url()
    );
    let config = gw_server::Config::from_toml(&text, "test config", std::iter::empty()).unwrap();
    let store = open_store("sqlite::memory:").await;
    let (_, key) = user(&store, "pro").await;
    let server = start(&config, Some(store)).await;
    let photos = dir.join("photos.zip");
    std::fs::write(&photos, &zip).unwrap();

    let run = |args: Vec<String>| {
        let (key, url) = (key.clone(), server.url.clone());
        tokio::task::spawn_blocking(move || {
            let out = Command::new(env!("CARGO_BIN_EXE_gateway"))
                .args(&args)
                .env("GATEWAY_URL", url)
                .env("GATEWAY_API_KEY", key)
                .output()
                .unwrap();
            Ran {
                code: out.status.code(),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            }
        })
    };

    // The zip is uploaded and the job made; once it shows running, Ctrl-C (SIGINT) stops the
    // waiting with the command that resumes it, and exit code 130.
    let args: Vec<String> = [
        "tune",
        &photos.display().to_string(),
        "--model",
        "wavespeed/flux-dev",
        "--trigger",
        "p3r5on",
        "--steps",
        "1000",
        "--rank",
        "16",
        "--learning-rate",
        "0.0004",
        "--suffix",
        "me",
        "--poll-ms",
        "60000",
    ]
    .map(str::to_owned)
    .to_vec();
    let stopped = interrupt_once(&args, &server.url, &key, "running").await;
    let said = &stopped.stderr;
    assert_eq!(stopped.code, Some(130), "{said}");
    assert!(stopped.stdout.is_empty(), "{}", stopped.stdout);
    assert!(
        said.contains("uploading") && said.contains("photos.zip"),
        "{said}"
    );
    assert!(said.contains("file file-"), "{said}");
    // The progress line: status, time spent, the newest event.
    assert!(said.contains("running  00:0"), "{said}");
    assert!(said.contains("Job started running"), "{said}");
    assert!(
        said.contains("stopped waiting; the job goes on: gateway tune --resume ftjob-"),
        "{said}"
    );
    let id = said
        .rsplit("--resume ")
        .next()
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_owned();
    // The zip went to WaveSpeed as it was on disk.
    let received = upstream.received();
    assert!(
        received[1].body.windows(zip.len()).any(|w| w == zip),
        "the upload does not carry the zip"
    );

    // Resumed by id: the job ends, its LoRA is copied into the media storage, the model's name
    // is stdout's last line, alone, and how to use it (with the trigger word the job recorded)
    // goes to stderr.
    let resumed = run(vec![
        "tune".into(),
        "--resume".into(),
        id.clone(),
        "--poll-ms".into(),
        "5".into(),
    ])
    .await
    .unwrap();
    assert_eq!(resumed.code, Some(0), "{}", resumed.stderr);
    let model = format!("ft:wavespeed/flux-dev:me:{id}");
    assert_eq!(resumed.stdout, format!("{model}\n"));
    assert!(resumed.stderr.contains("succeeded"), "{}", resumed.stderr);
    assert!(
        resumed.stderr.contains("/v1/images/generations")
            && resumed.stderr.contains(&format!("\"model\":\"{model}\""))
            && resumed.stderr.contains("p3r5on"),
        "{}",
        resumed.stderr
    );
    assert!(!resumed.stderr.contains(&key), "the key was printed");
    let kept = std::fs::read(media.join("loras").join(format!("{id}.safetensors"))).unwrap();
    assert_eq!(kept, lora);

    // The gateway's refusal comes back with its message (no provider call: the mock has none).
    let refused = run(vec![
        "tune".into(),
        photos.display().to_string(),
        "--model".into(),
        "wavespeed/flux-dev".into(),
        "--steps".into(),
        "10".into(),
    ])
    .await
    .unwrap();
    assert_eq!(refused.code, Some(1), "{}", refused.stderr);
    assert!(
        refused.stderr.contains("400") && refused.stderr.contains("`steps`"),
        "{}",
        refused.stderr
    );

    // A zip the client hosts: created by URL, trained, failed; the provider's reason is shown.
    let failed = run(vec![
        "tune".into(),
        hosted.into(),
        "--model".into(),
        "wavespeed/flux-dev".into(),
        "--poll-ms".into(),
        "5".into(),
    ])
    .await
    .unwrap();
    assert_eq!(failed.code, Some(1), "{}", failed.stderr);
    assert!(failed.stdout.is_empty(), "{}", failed.stdout);
    assert!(
        failed.stderr.contains("file file-") && failed.stderr.contains(hosted),
        "{}",
        failed.stderr
    );
    assert!(
        failed
            .stderr
            .contains("failed: not enough faces in the images"),
        "{}",
        failed.stderr
    );
    assert!(upstream.verify().is_empty(), "{:?}", upstream.verify());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tune_refuses_a_file_that_is_not_a_zip_before_any_request() {
    // A port that takes connections, to see that none comes.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let dir = std::env::temp_dir().join(support::unique("cli-tune-refused"));
    std::fs::create_dir_all(&dir).unwrap();
    let text = dir.join("photos.txt");
    std::fs::write(&text, "not a zip").unwrap();
    let missing = dir.join("missing.zip");
    for (file, why) in [(&text, "is not a zip file"), (&missing, "cannot read")] {
        let out = Command::new(env!("CARGO_BIN_EXE_gateway"))
            .args([
                "tune",
                &file.display().to_string(),
                "--model",
                "wavespeed/flux-dev",
            ])
            .env("GATEWAY_URL", &url)
            .env("GATEWAY_API_KEY", "gw-key")
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{said}");
        assert!(said.contains(&file.display().to_string()), "{said}");
        assert!(said.contains(why), "{said}");
    }
    assert_eq!(
        listener.accept().unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock,
        "the CLI connected to the gateway"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
