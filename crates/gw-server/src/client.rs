//! `gateway speak`, `gateway transcribe` and `gateway video`: the gateway's own client for its
//! audio and video endpoints, so a user can make speech, a transcript or a video from a shell
//! without writing a program. They talk to a
//! running gateway (`--url`, default `GATEWAY_URL` or `http://127.0.0.1:8080`) with a gateway key
//! (`--key`, default `GATEWAY_API_KEY`); no configuration file is read.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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

/// `gateway video`.
#[derive(Debug, Args)]
pub(crate) struct Video {
    /// What to film (not needed with `--resume`).
    #[arg(required_unless_present = "resume")]
    prompt: Option<String>,
    /// The video model (`<provider>/<model>` or an alias).
    #[arg(
        long,
        default_value = "wavespeed/wavespeed-ai/hunyuan-video-1.5/text-to-video"
    )]
    model: String,
    /// Its length in seconds, where the model offers a choice.
    #[arg(long)]
    seconds: Option<u32>,
    /// Its size (`1280x720`), where the model offers a choice.
    #[arg(long)]
    size: Option<String>,
    /// The first frame, for image-to-video: an image file, or an `https://` URL.
    #[arg(long)]
    image: Option<String>,
    /// Follow a job made earlier (its id, `video_...`) instead of making one.
    #[arg(long, conflicts_with_all = ["prompt", "image"])]
    resume: Option<String>,
    /// Where to write the video.
    #[arg(long, short, default_value = "video.mp4")]
    out: PathBuf,
    /// How often to ask how the job is doing, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    poll_ms: u64,
    #[command(flatten)]
    connection: Connection,
}

/// Makes a video (or follows one with `--resume`), shows how it goes, and writes it to
/// `args.out`. Ctrl-C stops the waiting, not the job: the id to resume with is printed.
pub(crate) async fn video(args: Video) -> Result<(), String> {
    let http = http()?;
    let base = args.connection.url.trim_end_matches('/').to_owned();
    let key = args.connection.key.clone();
    let id = match &args.resume {
        Some(id) => id.clone(),
        None => {
            let mut body = json!({"model": args.model, "prompt": args.prompt});
            if let Some(seconds) = args.seconds {
                body["seconds"] = Value::String(seconds.to_string());
            }
            if let Some(size) = &args.size {
                body["size"] = Value::String(size.clone());
            }
            if let Some(image) = &args.image {
                body["input_reference"] = Value::String(image_reference(image)?);
            }
            let response = http
                .post(format!("{base}/v1/videos"))
                .bearer_auth(&key)
                .json(&body)
                .send()
                .await
                .map_err(|e| unreachable(&base, &e))?;
            let job: Value = serde_json::from_slice(&answer(response).await?)
                .map_err(|e| format!("the gateway's answer is not a video object: {e}"))?;
            job["id"]
                .as_str()
                .ok_or("the gateway's answer has no job id")?
                .to_owned()
        }
    };
    eprintln!("job {id}: Ctrl-C stops waiting, not the job (gateway video --resume {id})");
    let follow = follow(&http, &base, &key, &id, Duration::from_millis(args.poll_ms));
    let finished = tokio::select! {
        finished = follow => finished?,
        _ = tokio::signal::ctrl_c() => {
            eprintln!();
            return Err(format!(
                "stopped waiting; the job goes on: gateway video --resume {id} --out {}",
                args.out.display()
            ));
        }
    };
    if finished["status"] != "completed" {
        let why = finished["error"]["message"]
            .as_str()
            .unwrap_or("no reason given");
        return Err(format!("job {id} failed: {why}"));
    }
    let response = http
        .get(format!("{base}/v1/videos/{id}/content"))
        .bearer_auth(&key)
        .send()
        .await
        .map_err(|e| unreachable(&base, &e))?;
    let cost = cost(&response);
    let video = answer(response).await?;
    write(&args.out, &video)?;
    println!(
        "wrote {} ({} bytes, cost {cost})",
        args.out.display(),
        video.len()
    );
    Ok(())
}

/// An image file as a data URL, or an `https://` URL as it is.
fn image_reference(image: &str) -> Result<String, String> {
    if image.starts_with("https://") || image.starts_with("http://") {
        return Ok(image.to_owned());
    }
    let data = std::fs::read(image).map_err(|e| format!("cannot read {image}: {e}"))?;
    let mime = llm_gateway::sniff_image(&data)
        .ok_or_else(|| format!("{image} is not a PNG, JPEG, WebP or GIF image"))?;
    Ok(format!(
        "data:{mime};base64,{}",
        llm_gateway::encode_base64(&data)
    ))
}

/// Asks about job `id` every `every` until it ends, showing its status, progress and the time
/// spent on one line of stderr; the last video object.
async fn follow(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    id: &str,
    every: Duration,
) -> Result<Value, String> {
    let started = Instant::now();
    let live = std::io::stderr().is_terminal();
    let mut last_line = String::new();
    loop {
        let response = http
            .get(format!("{base}/v1/videos/{id}"))
            .bearer_auth(key)
            .send()
            .await
            .map_err(|e| unreachable(base, &e))?;
        let job: Value = serde_json::from_slice(&answer(response).await?)
            .map_err(|e| format!("the gateway's answer is not a video object: {e}"))?;
        let status = job["status"].as_str().unwrap_or("unknown").to_owned();
        let line = progress_line(&status, job["progress"].as_u64(), started.elapsed());
        if live {
            eprint!("\r{line:<60}");
        } else if line != last_line {
            eprintln!("{line}");
        }
        last_line = line;
        if status == "completed" || status == "failed" {
            if live {
                eprintln!();
            }
            return Ok(job);
        }
        tokio::time::sleep(every).await;
    }
}

/// `[#######.............]  35%  in_progress  01:12`: a bar where the provider reports
/// progress, else the status and the time spent.
fn progress_line(status: &str, progress: Option<u64>, elapsed: Duration) -> String {
    let secs = elapsed.as_secs();
    let clock = format!("{:02}:{:02}", secs / 60, secs % 60);
    match progress {
        Some(p) => {
            let p = p.min(100);
            let filled = usize::try_from(p / 5).unwrap_or(20);
            format!(
                "[{}{}] {p:>3}%  {status}  {clock}",
                "#".repeat(filled),
                ".".repeat(20 - filled)
            )
        }
        None => format!("{status}  {clock}"),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_shows_a_bar_when_the_provider_reports_one() {
        let at = Duration::from_secs(72);
        assert_eq!(
            progress_line("in_progress", Some(35), at),
            "[#######.............]  35%  in_progress  01:12"
        );
        assert_eq!(progress_line("queued", None, at), "queued  01:12");
        assert!(
            progress_line("completed", Some(250), at).starts_with("[####################] 100%")
        );
    }
}
