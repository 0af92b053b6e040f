//! `gateway speak` and `gateway transcribe`: the gateway's own client for its audio endpoints, so
//! a user can make speech or a transcript from a shell without writing a program. They talk to a
//! running gateway (`--url`, default `GATEWAY_URL` or `http://127.0.0.1:8080`) with a gateway key
//! (`--key`, default `GATEWAY_API_KEY`); no configuration file is read.

use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::{Value, json};

/// Where the gateway is and who asks.
#[derive(Debug, Args)]
pub(crate) struct Connection {
    /// The gateway's base URL.
    #[arg(long, env = "GATEWAY_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// A gateway key (`gateway admin key create`).
    #[arg(long, env = "GATEWAY_API_KEY", hide_env_values = true)]
    key: String,
}

/// `gateway speak`.
#[derive(Debug, Args)]
pub(crate) struct Speak {
    /// The text to speak.
    text: String,
    /// The speech model (`<provider>/<model>` or an alias).
    #[arg(long, default_value = "gemini/gemini-2.5-flash-preview-tts")]
    model: String,
    /// The voice, as the provider names it (the provider's default if left out).
    #[arg(long)]
    voice: Option<String>,
    /// The audio format (`wav`, `pcm`, `mp3`, ... as the provider offers).
    #[arg(long, default_value = "wav")]
    format: String,
    /// Where to write the audio.
    #[arg(long, short, default_value = "speech.wav")]
    out: PathBuf,
    #[command(flatten)]
    connection: Connection,
}

/// `gateway transcribe`.
#[derive(Debug, Args)]
pub(crate) struct Transcribe {
    /// The audio file.
    file: PathBuf,
    /// The transcription model (`<provider>/<model>` or an alias).
    #[arg(long, default_value = "gemini/gemini-2.5-flash")]
    model: String,
    /// The spoken language (ISO 639-1), if known.
    #[arg(long)]
    language: Option<String>,
    /// `text` (the default), `json`, `verbose_json`, `srt` or `vtt`.
    #[arg(long, default_value = "text")]
    format: String,
    #[command(flatten)]
    connection: Connection,
}

/// Speaks `args.text` and writes the audio to `args.out`.
pub(crate) async fn speak(args: Speak) -> Result<(), String> {
    let mut body = json!({"model": args.model, "input": args.text, "response_format": args.format});
    if let Some(voice) = &args.voice {
        body["voice"] = Value::String(voice.clone());
    }
    let response = http()?
        .post(endpoint(&args.connection.url, "/v1/audio/speech"))
        .bearer_auth(&args.connection.key)
        .json(&body)
        .send()
        .await
        .map_err(|e| unreachable(&args.connection.url, &e))?;
    let cost = cost(&response);
    let audio = answer(response).await?;
    write(&args.out, &audio)?;
    println!(
        "wrote {} ({} bytes, cost {cost})",
        args.out.display(),
        audio.len()
    );
    Ok(())
}

/// Transcribes `args.file` and prints the transcript.
pub(crate) async fn transcribe(args: Transcribe) -> Result<(), String> {
    let data = std::fs::read(&args.file)
        .map_err(|e| format!("cannot read {}: {e}", args.file.display()))?;
    let name = args
        .file
        .file_name()
        .map_or_else(|| "audio".to_owned(), |n| n.to_string_lossy().into_owned());
    let mut form = reqwest::multipart::Form::new()
        .text("model", args.model.clone())
        .text("response_format", args.format.clone())
        .part(
            "file",
            reqwest::multipart::Part::bytes(data).file_name(name),
        );
    if let Some(language) = &args.language {
        form = form.text("language", language.clone());
    }
    let response = http()?
        .post(endpoint(&args.connection.url, "/v1/audio/transcriptions"))
        .bearer_auth(&args.connection.key)
        .multipart(form)
        .send()
        .await
        .map_err(|e| unreachable(&args.connection.url, &e))?;
    let cost = cost(&response);
    let text = answer(response).await?;
    let text = String::from_utf8_lossy(&text);
    println!("{}", text.trim_end());
    eprintln!("cost {cost}");
    Ok(())
}

fn http() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

fn endpoint(base: &str, path: &str) -> String {
    format!("{}{path}", base.trim_end_matches('/'))
}

fn unreachable(url: &str, e: &reqwest::Error) -> String {
    format!("cannot reach the gateway at {url}: {e}")
}

/// The cost the gateway recorded, as it reports it.
fn cost(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("x-gateway-cost-usd")
        .and_then(|v| v.to_str().ok())
        .map_or_else(|| "unknown".to_owned(), |c| format!("${c}"))
}

/// The body of a successful answer, or the gateway's error message.
async fn answer(response: reqwest::Response) -> Result<Vec<u8>, String> {
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| format!("the gateway's answer broke off: {e}"))?;
    if status.is_success() {
        return Ok(body.to_vec());
    }
    let message = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
    Err(format!("the gateway answered {status}: {message}"))
}

/// Writes `data` to `path`, whole or not at all (a temporary file renamed into place).
fn write(path: &Path, data: &[u8]) -> Result<(), String> {
    let partial = path.with_extension("partial");
    std::fs::write(&partial, data)
        .and_then(|()| std::fs::rename(&partial, path))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}
