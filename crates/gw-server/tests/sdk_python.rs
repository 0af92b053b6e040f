//! The official `openai` Python SDK, unchanged, against the running gateway: `images.generate`
//! on each image provider and `images.edit` with an uploaded file, every image written to a PNG
//! that Pillow opens (`tests/sdk/openai_images.py`); `audio.speech.create` saved to a `.wav` that
//! Python's `wave` module reads, and that file sent back to `audio.transcriptions.create`
//! (`tests/sdk/openai_audio.py`); a zip of images uploaded with `files.create`, a LoRA trained on
//! it through `fine_tuning.jobs` and an image generated with the fine-tuned model
//! (`tests/sdk/openai_fine_tuning.py`). The providers are a scripted mock playing each one's wire
//! format.
//!
//! Needs `python3` with `openai` and `pillow` (`pip install openai pillow`). Without them the test
//! says so and skips, unless `GATEWAY_REQUIRE_PYTHON_SDK=1` (set by `.ci/run` after installing
//! them), which makes their absence a failure.

mod support;

use std::path::PathBuf;
use std::process::Command;

use gw_mock::MockUpstream;
use gw_mock::fixture::UpstreamStep;
use gw_server::Config;
use serde_json::{Value, json};
use support::{open_store, start, user};

/// A 4x3 PNG, as a provider would draw one (small enough to read in a failure message).
const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAQAAAADCAIAAAA7ljmRAAAAFElEQVR4nGM8UaHBAANMDEgAhQMANUQBbvQnLyMAAAAASUVORK5CYII=";

/// Whether `python3` can import the SDK and Pillow; why not, if it cannot.
fn python_ready() -> Result<(), String> {
    let out = Command::new("python3")
        .args(["-c", "import openai, PIL"])
        .output()
        .map_err(|e| format!("python3 does not run: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

fn step(v: Value) -> UpstreamStep {
    serde_json::from_value(v).expect("a valid upstream step")
}

/// A WaveSpeed prediction envelope in `status`, with `outputs`.
fn prediction(id: &str, model: &str, status: &str, outputs: Value) -> Value {
    json!({"code": 200, "message": "success", "data": {
        "id": id, "model": model, "outputs": outputs,
        "urls": {"get": format!("https://api.wavespeed.ai/api/v3/predictions/{id}/result")},
        "has_nsfw_contents": [], "status": status, "created_at": "2026-11-28T12:00:00.000Z",
        "error": "", "timings": {"inference": 0}}})
}

/// Submit, then one poll that finds it completed with `outputs`.
fn wavespeed_job(id: &str, model: &str, outputs: Value) -> [UpstreamStep; 2] {
    [
        step(json!({
            "expect": {"method": "POST", "path": format!("/api/v3/{model}")},
            "respond": {"json": prediction(id, model, "created", json!([]))}
        })),
        step(json!({
            "expect": {"method": "GET", "path": format!("/api/v3/predictions/{id}/result")},
            "respond": {"json": prediction(id, model, "completed", outputs)}
        })),
    ]
}

#[tokio::test]
async fn the_openai_python_sdk_generates_and_edits_images_on_every_provider() {
    if let Err(why) = python_ready() {
        assert!(
            std::env::var("GATEWAY_REQUIRE_PYTHON_SDK").as_deref() != Ok("1"),
            "GATEWAY_REQUIRE_PYTHON_SDK=1 but python3 cannot import openai and PIL: {why}"
        );
        eprintln!(
            "skipped: python3 cannot import openai and PIL ({why}); pip install openai pillow"
        );
        return;
    }
    // Where WaveSpeed's CDN would be: the gateway downloads an output URL when bytes are asked.
    let cdn = MockUpstream::start(vec![step(json!({
        "expect": {"method": "GET", "path": "/predictions/ws-3/0.png"},
        "respond": {"headers": {"content-type": "image/png"}, "base64": PNG}
    }))])
    .await
    .unwrap();
    let cdn_url = format!("{}/predictions/ws-3/0.png", cdn.url());

    let mut steps = vec![
        step(json!({
            "expect": {"method": "POST", "path": "/v1beta/models/imagen-4.0-generate-001:predict"},
            "respond": {"json": {"predictions": [{"bytesBase64Encoded": PNG, "mimeType": "image/png"}]}}
        })),
        step(json!({
            "expect": {"method": "POST", "path": "/v1beta/models/gemini-2.5-flash-image:generateContent"},
            "respond": {"json": {
                "candidates": [{"content": {"role": "model", "parts": [
                    {"inlineData": {"mimeType": "image/png", "data": PNG}}]}, "finishReason": "STOP"}],
                "usageMetadata": {"promptTokenCount": 7, "candidatesTokenCount": 1290, "totalTokenCount": 1297,
                    "candidatesTokensDetails": [{"modality": "IMAGE", "tokenCount": 1290}]}}}
        })),
        step(json!({
            "expect": {"method": "POST", "path": "/hf-inference/models/stabilityai/stable-diffusion-xl-base-1.0"},
            "respond": {"headers": {"content-type": "image/png"}, "base64": PNG}
        })),
        step(json!({
            "expect": {"method": "POST", "path": "/v2beta/stable-image/generate/core"},
            "respond": {"headers": {"content-type": "application/json; type=image/png"},
                        "json": {"image": PNG, "finish_reason": "SUCCESS", "seed": 42}}
        })),
    ];
    steps.extend(wavespeed_job("ws-1", "wavespeed-ai/flux-dev", json!([PNG])));
    steps.extend(wavespeed_job(
        "ws-2",
        "wavespeed-ai/flux-dev",
        json!(["https://d1q70pf5vjeyhc.cloudfront.net/predictions/ws-2/0.png"]),
    ));
    steps.extend(wavespeed_job(
        "ws-3",
        "wavespeed-ai/image-background-remover",
        json!([cdn_url]),
    ));
    let upstream = MockUpstream::start(steps).await.unwrap();

    let u = upstream.url();
    let text = format!(
        "[retry]\ninitial_backoff_ms = 1\nmax_backoff_ms = 2\n\
         [providers.gemini]\nbase_url = \"{u}\"\napi_key = \"provider-key\"\n\
         [providers.hf]\nbase_url = \"{u}\"\napi_key = \"provider-key\"\n\
         [providers.stability]\nbase_url = \"{u}\"\napi_key = \"provider-key\"\n\
         [providers.wavespeed]\nbase_url = \"{u}\"\napi_key = \"provider-key\"\npoll_interval_ms = 0\n\
         [providers.wavespeed.downloads]\nallow_private = true\n"
    );
    let config = Config::from_toml(&text, "test config", std::iter::empty()).unwrap();
    let store = open_store("sqlite::memory:").await;
    // Enterprise: Hugging Face's hf-inference backend bills by compute time and has no per-image price.
    let (_, key) = user(&store, "enterprise").await;
    let server = start(&config, Some(store)).await;

    let dir = std::env::temp_dir().join(support::unique("sdk-images"));
    std::fs::create_dir_all(&dir).unwrap();
    let upload = dir.join("photo.png");
    std::fs::write(&upload, llm_gateway::decode_base64(PNG).unwrap()).unwrap();
    let cases = json!([
        {"call": "generate", "model": "gemini/imagen-4.0-generate-001"},
        {"call": "generate", "model": "gemini/gemini-2.5-flash-image", "response_format": "b64_json"},
        {"call": "generate", "model": "hf/stabilityai/stable-diffusion-xl-base-1.0:hf-inference"},
        {"call": "generate", "model": "stability/core"},
        {"call": "generate", "model": "wavespeed/wavespeed-ai/flux-dev", "response_format": "b64_json"},
        {"call": "generate", "model": "wavespeed/wavespeed-ai/flux-dev"},
        {"call": "edit", "model": "wavespeed/wavespeed-ai/image-background-remover",
         "image": upload, "response_format": "b64_json", "prompt": "remove the background"}
    ]);
    let script: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "..",
        "..",
        "tests",
        "sdk",
        "openai_images.py",
    ]
    .iter()
    .collect();
    let base = format!("{}/v1", server.url);
    let dir_arg = dir.display().to_string();
    let cases_arg = cases.to_string();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(script)
            .args([
                base.as_str(),
                key.as_str(),
                dir_arg.as_str(),
                cases_arg.as_str(),
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the SDK script failed:\n{stdout}\n{}\nupstream: {:?}",
        String::from_utf8_lossy(&out.stderr),
        upstream.verify()
    );
    let reports: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(reports.len(), 7, "{stdout}");
    for (i, report) in reports.iter().enumerate() {
        let images = report["images"].as_array().unwrap();
        assert_eq!(images.len(), 1, "{report}");
        assert_eq!(report["usage_images"], 1, "{report}");
        if i == 5 {
            assert_eq!(
                images[0]["url"], "https://d1q70pf5vjeyhc.cloudfront.net/predictions/ws-2/0.png",
                "WaveSpeed's URL by default: {report}"
            );
        } else {
            assert_eq!(
                images[0],
                json!({"format": "PNG", "size": [4, 3]}),
                "{report}"
            );
        }
    }
    assert!(upstream.verify().is_empty(), "{:?}", upstream.verify());
    assert!(cdn.verify().is_empty(), "{:?}", cdn.verify());
    // The upload reached WaveSpeed as the image the SDK sent, as a data URL.
    let edit = upstream
        .received()
        .into_iter()
        .find(|r| r.path.ends_with("image-background-remover"))
        .and_then(|r| r.json())
        .unwrap();
    assert_eq!(
        edit["image"],
        format!("data:image/png;base64,{PNG}"),
        "{edit}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    drop(server);
}

/// Half a second of a 440 Hz tone as Gemini's TTS answers it: raw 16-bit PCM, mono, 24 kHz.
fn gemini_pcm() -> String {
    let samples: Vec<u8> = (0..12_000)
        .flat_map(|i| {
            let t = f64::from(i) / 24_000.0;
            let v = (t * 440.0 * std::f64::consts::TAU).sin() * 8_000.0;
            (v as i16).to_le_bytes()
        })
        .collect();
    llm_gateway::encode_base64(&samples)
}

#[tokio::test]
async fn the_openai_python_sdk_speaks_and_transcribes_through_the_gateway() {
    if let Err(why) = python_ready() {
        assert!(
            std::env::var("GATEWAY_REQUIRE_PYTHON_SDK").as_deref() != Ok("1"),
            "GATEWAY_REQUIRE_PYTHON_SDK=1 but python3 cannot import openai and PIL: {why}"
        );
        eprintln!(
            "skipped: python3 cannot import openai and PIL ({why}); pip install openai pillow"
        );
        return;
    }
    let transcript = |text: &str| {
        step(json!({
            "expect": {"method": "POST", "path": "/v1beta/models/gemini-2.5-flash:generateContent"},
            "respond": {"json": {
                "candidates": [{"content": {"role": "model", "parts": [{"text": text}]},
                                "finishReason": "STOP"}],
                "usageMetadata": {"promptTokenCount": 60, "candidatesTokenCount": 5, "totalTokenCount": 65,
                    "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 44},
                                            {"modality": "AUDIO", "tokenCount": 16}],
                    "candidatesTokensDetails": [{"modality": "TEXT", "tokenCount": 5}]}}}
        }))
    };
    let upstream = MockUpstream::start(vec![
        step(json!({
            "expect": {"method": "POST",
                       "path": "/v1beta/models/gemini-2.5-flash-preview-tts:generateContent",
                       "json": {"generationConfig": {"responseModalities": ["AUDIO"]}}},
            "respond": {"json": {
                "candidates": [{"content": {"role": "model", "parts": [{"inlineData": {
                    "mimeType": "audio/L16;codec=pcm;rate=24000", "data": gemini_pcm()}}]},
                    "finishReason": "STOP"}],
                "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 16, "totalTokenCount": 25,
                    "candidatesTokensDetails": [{"modality": "AUDIO", "tokenCount": 16}]}}}
        })),
        transcript("Hello from the gateway"),
        transcript("Hello from the gateway"),
    ])
    .await
    .unwrap();
    let u = upstream.url();
    let text = format!(
        "[retry]\ninitial_backoff_ms = 1\nmax_backoff_ms = 2\n\
         [providers.gemini]\nbase_url = \"{u}\"\napi_key = \"provider-key\"\n"
    );
    let config = Config::from_toml(&text, "test config", std::iter::empty()).unwrap();
    let store = open_store("sqlite::memory:").await;
    let (_, key) = user(&store, "pro").await;
    let server = start(&config, Some(store)).await;

    let dir = std::env::temp_dir().join(support::unique("sdk-audio"));
    std::fs::create_dir_all(&dir).unwrap();
    let script: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "..",
        "..",
        "tests",
        "sdk",
        "openai_audio.py",
    ]
    .iter()
    .collect();
    let args = [
        format!("{}/v1", server.url),
        key,
        dir.display().to_string(),
        "gemini/gemini-2.5-flash-preview-tts".to_owned(),
        "gemini/gemini-2.5-flash".to_owned(),
    ];
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(script)
            .args(&args)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the SDK script failed:\n{stdout}\n{}\nupstream: {:?}",
        String::from_utf8_lossy(&out.stderr),
        upstream.verify()
    );
    let report: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(
        report,
        json!({"channels": 1, "sample_width": 2, "rate": 24000, "frames": 12000,
               "text": "Hello from the gateway", "plain": "Hello from the gateway"}),
        "{stdout}"
    );
    assert!(upstream.verify().is_empty(), "{:?}", upstream.verify());
    // The WAV the SDK saved went back to Gemini inline, as it was.
    let sent = upstream.received()[1].json().unwrap();
    let inline = &sent["contents"][0]["parts"][1]["inlineData"];
    assert_eq!(inline["mimeType"], "audio/wav", "{sent}");
    let _ = std::fs::remove_dir_all(&dir);
    drop(server);
}

/// The LoRA WaveSpeed's trainer hands back (a safetensors file in a real run).
const LORA: &[u8] = b"SAFETENSORS-LORA-WEIGHTS";

#[tokio::test]
async fn the_openai_python_sdk_uploads_a_zip_trains_and_generates_with_the_fine_tuned_model() {
    if let Err(why) = python_ready() {
        assert!(
            std::env::var("GATEWAY_REQUIRE_PYTHON_SDK").as_deref() != Ok("1"),
            "GATEWAY_REQUIRE_PYTHON_SDK=1 but python3 cannot import openai and PIL: {why}"
        );
        eprintln!(
            "skipped: python3 cannot import openai and PIL ({why}); pip install openai pillow"
        );
        return;
    }
    const TRAINER: &str = "wavespeed-ai/flux-dev-lora-trainer";
    const TRAINING: &str = "5b4a9c2e1d7f4e3a8c6b0d9f2e1a7c3b";
    const LORA_MODEL: &str = "wavespeed-ai/flux-dev-lora";
    const IMAGE: &str = "9d8c7b6a5f4e4d3c2b1a0f9e8d7c6b5a";
    let zip_url = "https://d1q70pf5vjeyhc.cloudfront.net/media/uploads/photos.zip";
    let image_url = format!("https://d1q70pf5vjeyhc.cloudfront.net/predictions/{IMAGE}/0.jpeg");
    let auth = json!({"authorization": "Bearer provider-key"});
    // The calls of tests/contract/fine-tuning/train-upload-poll-copy-generate.json, in its
    // order (its `source` cites WaveSpeed's docs for each): the quote, the zip's upload and the
    // trainer's submit when the job is made, a poll per retrieve until the run completes, the
    // LoRA's copy from the output URL (on this mock), then the LoRA model's image job.
    let upstream = MockUpstream::start_with(|u| {
        let weights = format!("{u}/outputs/x.safetensors");
        vec![
            step(json!({
                "expect": {"method": "POST", "path": "/api/v3/model/price", "headers": auth,
                           "json": {"model_id": TRAINER,
                                    "inputs": {"trigger_word": "p3r5on", "steps": 1000}}},
                "respond": {"json": {"code": 200, "message": "success", "data": {
                    "model_id": TRAINER, "price": 1.25, "discounted_price": 1.25,
                    "discount_rate": 0, "currency": "USD"}}}
            })),
            step(json!({
                "expect": {"method": "POST", "path": "/api/v3/media/upload/binary",
                           "headers": auth, "multipart": {"file": "<any>"}},
                "respond": {"json": {"code": 200, "message": "success", "data": {
                    "download_url": zip_url}}}
            })),
            step(json!({
                "expect": {"method": "POST", "path": format!("/api/v3/{TRAINER}"), "headers": auth,
                           "json": {"data": zip_url, "trigger_word": "p3r5on", "steps": 1000}},
                "respond": {"json": prediction(TRAINING, TRAINER, "created", json!([]))}
            })),
            step(json!({
                "expect": {"method": "GET", "path": format!("/api/v3/predictions/{TRAINING}/result")},
                "respond": {"json": prediction(TRAINING, TRAINER, "processing", json!([]))}
            })),
            step(json!({
                "expect": {"method": "GET", "path": format!("/api/v3/predictions/{TRAINING}/result")},
                "respond": {"json": prediction(TRAINING, TRAINER, "completed", json!([weights]))}
            })),
            step(json!({
                "expect": {"method": "GET", "path": "/outputs/x.safetensors"},
                "respond": {"headers": {"content-type": "application/octet-stream"},
                            "base64": llm_gateway::encode_base64(LORA)}
            })),
            // Without `[media] public_url` the provider gets its own URL of the LoRA back.
            step(json!({
                "expect": {"method": "POST", "path": format!("/api/v3/{LORA_MODEL}"), "headers": auth,
                           "json": {"prompt": "p3r5on riding a bike, studio light",
                                    "loras": [{"path": weights, "scale": 1}]}},
                "respond": {"json": prediction(IMAGE, LORA_MODEL, "created", json!([]))}
            })),
            step(json!({
                "expect": {"method": "GET", "path": format!("/api/v3/predictions/{IMAGE}/result")},
                "respond": {"json": prediction(IMAGE, LORA_MODEL, "completed", json!([image_url]))}
            })),
        ]
    })
    .await
    .unwrap();

    let dir = support::tempfile_dir::TempDir::new("sdk-fine-tuning");
    let media = dir.path().join("media");
    // No background poller: a job advances only when the script retrieves it, so the polls
    // happen in the mock's order. Uploads and LoRAs go to this test's own directory.
    let text = format!(
        "[retry]\ninitial_backoff_ms = 1\nmax_backoff_ms = 2\n\
         [jobs]\npoll_interval_ms = 0\n\
         [media]\ndir = {}\n\
         [providers.wavespeed]\nbase_url = \"{}\"\napi_key = \"provider-key\"\npoll_interval_ms = 0\n\
         [providers.wavespeed.downloads]\nallow_private = true\n",
        Value::String(media.display().to_string()),
        upstream.url()
    );
    let config = Config::from_toml(&text, "test config", std::iter::empty()).unwrap();
    let store = open_store("sqlite::memory:").await;
    let (_, key) = user(&store, "pro").await;
    let server = start(&config, Some(store)).await;

    let script: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "..",
        "..",
        "tests",
        "sdk",
        "openai_fine_tuning.py",
    ]
    .iter()
    .collect();
    let args = [
        format!("{}/v1", server.url),
        key,
        dir.path().display().to_string(),
    ];
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(script)
            .args(&args)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the SDK script failed:\n{stdout}\n{}\nupstream: {:?}",
        String::from_utf8_lossy(&out.stderr),
        upstream.verify()
    );
    let reports: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let step_of = |name: &str| {
        reports
            .iter()
            .find(|r| r["step"] == name)
            .unwrap_or_else(|| panic!("no `{name}` line in:\n{stdout}"))
    };
    let steps: Vec<&str> = reports.iter().filter_map(|r| r["step"].as_str()).collect();
    assert_eq!(
        steps,
        [
            "upload", "create", "retrieve", "result", "events", "list", "generate", "refusal"
        ],
        "{stdout}"
    );

    let zip = std::fs::read(dir.path().join("photos.zip")).unwrap();
    let upload = step_of("upload");
    assert_eq!(upload["bytes"], zip.len(), "{upload}");
    assert_eq!(upload["purpose"], "fine-tune", "{upload}");
    assert_eq!(upload["filename"], "photos.zip", "{upload}");
    let file_id = upload["id"].as_str().unwrap();
    assert!(file_id.starts_with("file-"), "{upload}");

    let create = step_of("create");
    assert_eq!(create["status"], "queued", "{create}");
    assert_eq!(create["model"], "wavespeed/flux-dev", "{create}");
    assert_eq!(create["training_file"], file_id, "{create}");
    let job_id = create["id"].as_str().unwrap();

    // One retrieve per poll: running while WaveSpeed processes, then succeeded with the model
    // named after the suffix and the job.
    let retrieve = step_of("retrieve");
    assert_eq!(
        retrieve["statuses"],
        json!(["running", "succeeded"]),
        "{retrieve}"
    );
    let model = format!("ft:wavespeed/flux-dev:p3r5on:{job_id}");
    assert_eq!(retrieve["fine_tuned_model"], model, "{retrieve}");
    assert_eq!(retrieve["error"], Value::Null, "{retrieve}");
    // The result file is the LoRA copied from the provider, byte for byte.
    let result = step_of("result");
    assert_eq!(result["file"], retrieve["result_files"][0], "{result}");
    assert_eq!(
        result["base64"],
        llm_gateway::encode_base64(LORA),
        "{result}"
    );

    let events = step_of("events");
    let messages = events["messages"].as_array().unwrap();
    assert!(
        messages
            .iter()
            .any(|m| m == "The job has successfully completed"),
        "{events}"
    );
    let list = step_of("list");
    assert!(
        list["ids"]
            .as_array()
            .unwrap()
            .iter()
            .any(|id| id == job_id),
        "{list}"
    );

    let generate = step_of("generate");
    assert_eq!(generate["model"], model, "{generate}");
    assert_eq!(generate["url"], image_url, "WaveSpeed's URL: {generate}");

    let refusal = step_of("refusal");
    assert_eq!(refusal["status_code"], 400, "{refusal}");
    assert_eq!(refusal["param"], "hyperparameters.n_epochs", "{refusal}");
    assert_eq!(
        refusal["body"]["type"], "invalid_request_error",
        "{refusal}"
    );

    // Every call WaveSpeed should see, in order, and nothing for the refusal.
    assert!(upstream.verify().is_empty(), "{:?}", upstream.verify());
    // The zip reached WaveSpeed as the SDK uploaded it.
    let received = upstream.received();
    assert!(
        received[1].body.windows(zip.len()).any(|w| w == zip),
        "the upload to WaveSpeed does not carry the zip"
    );
    // The LoRA was copied into this test's media directory.
    let copied = media.join("loras").join(format!("{job_id}.safetensors"));
    assert_eq!(
        std::fs::read(&copied).ok().as_deref(),
        Some(LORA),
        "{copied:?}"
    );
    drop(server);
}
