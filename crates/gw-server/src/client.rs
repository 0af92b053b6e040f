//! `gateway speak`, `gateway transcribe`, `gateway video` and `gateway tune`: the gateway's own
//! client for its audio, video and fine-tuning endpoints, so a user can make speech, a
//! transcript, a video or a LoRA from a shell without writing a program. They talk to a
//! running gateway (`--url`, default `GATEWAY_URL` or `http://127.0.0.1:8080`) with a gateway key
//! (`--key`, default `GATEWAY_API_KEY`); no configuration file is read.

use std::io::{IsTerminal, Read, Seek};
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

/// `gateway tune`.
#[derive(Debug, Args)]
pub(crate) struct Tune {
    /// The training images: a zip file, or the `http(s)://` URL of one the gateway can fetch
    /// (not needed with `--resume`).
    #[arg(required_unless_present = "resume")]
    data: Option<String>,
    /// The base model to train a LoRA for (`<provider>/<family>`, e.g. `wavespeed/flux-dev`).
    #[arg(long, required_unless_present = "resume")]
    model: Option<String>,
    /// The word that calls up the trained subject in a prompt (the trainer's default if left
    /// out).
    #[arg(long)]
    trigger: Option<String>,
    /// Training steps (the trainer's default if left out).
    #[arg(long)]
    steps: Option<u64>,
    /// The LoRA's rank (the trainer's default if left out).
    #[arg(long)]
    rank: Option<u64>,
    /// The learning rate (the trainer's default if left out).
    #[arg(long, value_parser = finite_number)]
    learning_rate: Option<f64>,
    /// A word for the trained model's name (`ft:<model>:<suffix>:<job id>`).
    #[arg(long)]
    suffix: Option<String>,
    /// Follow a job made earlier (its id, `ftjob-...`) instead of making one.
    #[arg(
        long,
        conflicts_with_all = ["data", "model", "trigger", "steps", "rank", "learning_rate", "suffix"]
    )]
    resume: Option<String>,
    /// How often to ask how the job is doing, in milliseconds (each ask also asks the provider).
    #[arg(long, default_value_t = 5000)]
    poll_ms: u64,
    #[command(flatten)]
    connection: Connection,
}

/// Why a client command ended without doing its work: what to tell the user, and the process's
/// exit code.
#[derive(Debug)]
pub(crate) struct Stop {
    /// The message, printed after `gateway: `.
    pub(crate) message: String,
    /// The exit code: 1 for a failure, 130 for a wait the user stopped with Ctrl-C (as a shell
    /// reports a process that SIGINT ended).
    pub(crate) code: u8,
}

impl From<String> for Stop {
    fn from(message: String) -> Self {
        Self { message, code: 1 }
    }
}

impl From<&str> for Stop {
    fn from(message: &str) -> Self {
        message.to_owned().into()
    }
}

/// Makes a video (or follows one with `--resume`), shows how it goes, and writes it to
/// `args.out`. Ctrl-C stops the waiting, not the job: the command to resume with is printed,
/// and the exit code is 130.
pub(crate) async fn video(args: Video) -> Result<(), Stop> {
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
        // A signal handler that cannot be installed disables this branch (the pattern does not
        // match) rather than ending the wait.
        Ok(()) = tokio::signal::ctrl_c() => {
            eprintln!();
            return Err(Stop {
                message: format!(
                    "stopped waiting; the job goes on: gateway video --resume {id} --out {}",
                    args.out.display()
                ),
                code: 130,
            });
        }
    };
    if finished["status"] != "completed" {
        let why = finished["error"]["message"]
            .as_str()
            .unwrap_or("no reason given");
        return Err(format!("job {id} failed: {why}").into());
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
        let line = progress_line(&status, known_progress(&job), started.elapsed());
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

/// A video object's progress in percent, if it says anything. OpenAI's video object always
/// carries `progress`, an integer, so a job whose provider reports none (WaveSpeed) shows 0
/// until it is completed: 0 on a job not completed is unknown, not a percentage.
fn known_progress(job: &Value) -> Option<u64> {
    let progress = job["progress"].as_u64()?;
    (progress > 0 || job["status"] == "completed").then_some(progress)
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

/// The training data `gateway tune` was given: a zip file checked and opened, or a URL.
#[derive(Debug)]
enum TrainingData {
    /// A local zip: its path, its name as uploaded, its length and the open file.
    Zip {
        path: String,
        name: String,
        len: u64,
        file: std::fs::File,
    },
    /// An `http(s)://` URL of a zip the gateway fetches.
    Url(String),
}

/// The first bytes of a zip archive's first local file header (APPNOTE.TXT 4.3.7,
/// <https://pkware.cachefly.net/webdocs/casestudies/APPNOTE.TXT>): what the trainers take.
const ZIP_MAGIC: &[u8; 4] = b"PK\x03\x04";

impl TrainingData {
    /// Reads `data` as a URL or a zip file, refusing a file that is missing, unreadable or not a
    /// zip, naming it, before any request is made.
    fn open(data: &str) -> Result<Self, String> {
        let lower = data.get(..8).unwrap_or(data).to_ascii_lowercase();
        if lower.starts_with("https://") || lower.starts_with("http://") {
            return Ok(Self::Url(data.to_owned()));
        }
        if data.contains("://") {
            return Err(format!(
                "{data}: give a zip file or an http:// or https:// URL of one"
            ));
        }
        let cannot = |e: std::io::Error| format!("cannot read {data}: {e}");
        let mut file = std::fs::File::open(data).map_err(cannot)?;
        let meta = file.metadata().map_err(cannot)?;
        if !meta.is_file() {
            return Err(format!("cannot read {data}: it is not a file"));
        }
        let mut magic = [0u8; 4];
        let read = file.read(&mut magic).map_err(cannot)?;
        if read < magic.len() || &magic != ZIP_MAGIC {
            return Err(format!(
                "{data} is not a zip file (a zip of the training images is needed)"
            ));
        }
        file.rewind().map_err(cannot)?;
        let name = Path::new(data).file_name().map_or_else(
            || "data.zip".to_owned(),
            |n| n.to_string_lossy().into_owned(),
        );
        Ok(Self::Zip {
            path: data.to_owned(),
            name,
            len: meta.len(),
            file,
        })
    }
}

/// `--learning-rate`: a number JSON can carry (not NaN or infinite).
fn finite_number(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(x),
        _ => Err(format!("`{s}` is not a finite number")),
    }
}

/// A job id as the gateway makes them (`ftjob-` and letters and digits), so it can go into a
/// URL path as it is.
fn check_job_id(id: &str) -> Result<(), String> {
    let fits = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    if id.is_empty() || !id.chars().all(fits) {
        return Err(format!(
            "`{}` is not a fine-tuning job id (ftjob-...)",
            id.escape_debug()
        ));
    }
    Ok(())
}

/// Trains a LoRA (or follows a training with `--resume`), shows how it goes, and prints the
/// trained model's name as the last line of stdout. Ctrl-C stops the waiting, not the job:
/// the command to resume with is printed, and the exit code is 130.
pub(crate) async fn tune(args: Tune) -> Result<(), Stop> {
    // Everything local is checked before the first request.
    const NO_DATA: &str = "give the training data (a zip file or its URL), or --resume";
    let data = match &args.resume {
        Some(id) => {
            check_job_id(id)?;
            None
        }
        None => Some(TrainingData::open(args.data.as_deref().ok_or(NO_DATA)?)?),
    };
    let http = http()?;
    let base = args.connection.url.trim_end_matches('/').to_owned();
    let key = args.connection.key.clone();
    let id = match data {
        Some(data) => {
            let file = create_file(&http, &base, &key, data).await?;
            let job = create_job(&http, &base, &key, &args, &file).await?;
            check_job_id(&job).map_err(|e| format!("the gateway's answer: {e}"))?;
            job
        }
        None => args.resume.clone().ok_or(NO_DATA)?,
    };
    eprintln!("job {id}: Ctrl-C stops waiting, not the job (gateway tune --resume {id})");
    let follow = follow_tune(&http, &base, &key, &id, Duration::from_millis(args.poll_ms));
    let job = tokio::select! {
        job = follow => job?,
        // A signal handler that cannot be installed disables this branch (the pattern does not
        // match) rather than ending the wait.
        Ok(()) = tokio::signal::ctrl_c() => {
            eprintln!();
            return Err(Stop {
                message: format!("stopped waiting; the job goes on: gateway tune --resume {id}"),
                code: 130,
            });
        }
    };
    match job["status"].as_str() {
        Some("succeeded") => {
            let model = job["fine_tuned_model"]
                .as_str()
                .filter(|m| !m.is_empty())
                .ok_or_else(|| format!("job {id} succeeded, but the gateway names no model"))?;
            // The job's `trigger_word` (a gateway extension of OpenAI's job object) is the one
            // it trained with, given here or, on `--resume`, when it was made.
            let trigger = job["trigger_word"].as_str().or(args.trigger.as_deref());
            eprintln!("{}", usage_hint(&base, model, trigger));
            // Alone on the last line of stdout, for scripts: `model=$(gateway tune ...)`.
            println!("{model}");
            Ok(())
        }
        Some("cancelled") => Err(format!("job {id} was cancelled{}", job_error(&job)).into()),
        _ => Err(format!("job {id} failed{}", job_error(&job)).into()),
    }
}

/// `POST /v1/files` (`purpose=fine-tune`): the zip uploaded as a multipart `file` under its own
/// name, or the URL given as JSON; the new file's id.
async fn create_file(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    data: TrainingData,
) -> Result<String, String> {
    let request = http.post(format!("{base}/v1/files")).bearer_auth(key);
    let (request, what) = match data {
        TrainingData::Zip {
            path,
            name,
            len,
            file,
        } => {
            eprintln!("uploading {path} ({len} bytes)");
            let body = reqwest::Body::from(tokio::fs::File::from_std(file));
            let part = reqwest::multipart::Part::stream_with_length(body, len)
                .file_name(name)
                .mime_str("application/zip")
                .map_err(|e| format!("cannot write the upload of {path}: {e}"))?;
            let form = reqwest::multipart::Form::new()
                .text("purpose", "fine-tune")
                .part("file", part);
            (request.multipart(form), path)
        }
        TrainingData::Url(url) => (
            request.json(&json!({"purpose": "fine-tune", "url": url})),
            url,
        ),
    };
    let response = request.send().await.map_err(|e| unreachable(base, &e))?;
    let file: Value = serde_json::from_slice(&answer(response).await?)
        .map_err(|e| format!("the gateway's answer is not a file object: {e}"))?;
    let id = file["id"]
        .as_str()
        .ok_or("the gateway's answer has no file id")?
        .to_owned();
    eprintln!("file {id}: {what}");
    Ok(id)
}

/// `POST /v1/fine_tuning/jobs` for `file`, with the options given (and only those); the job's
/// id.
async fn create_job(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    args: &Tune,
    file: &str,
) -> Result<String, String> {
    let body = job_body(args, file);
    let response = http
        .post(format!("{base}/v1/fine_tuning/jobs"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .map_err(|e| unreachable(base, &e))?;
    let job: Value = serde_json::from_slice(&answer(response).await?)
        .map_err(|e| format!("the gateway's answer is not a fine-tuning job: {e}"))?;
    Ok(job["id"]
        .as_str()
        .ok_or("the gateway's answer has no job id")?
        .to_owned())
}

/// The body of `POST /v1/fine_tuning/jobs`: `provider_options` carries the trainer's options
/// that were given, and is left out when none were.
fn job_body(args: &Tune, file: &str) -> Value {
    let mut body = json!({"model": args.model, "training_file": file});
    if let Some(suffix) = &args.suffix {
        body["suffix"] = json!(suffix);
    }
    let mut options = serde_json::Map::new();
    if let Some(trigger) = &args.trigger {
        options.insert("trigger_word".into(), json!(trigger));
    }
    if let Some(steps) = args.steps {
        options.insert("steps".into(), json!(steps));
    }
    if let Some(rank) = args.rank {
        options.insert("lora_rank".into(), json!(rank));
    }
    if let Some(rate) = args.learning_rate {
        options.insert("learning_rate".into(), json!(rate));
    }
    if !options.is_empty() {
        body["provider_options"] = Value::Object(options);
    }
    body
}

/// Asks about job `id` every `every` until it ends, showing its status, the time spent and its
/// newest event on one line of stderr; the last job object.
async fn follow_tune(
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
        // The job first: asking it is what advances it, so the newest event is then its latest.
        let response = http
            .get(format!("{base}/v1/fine_tuning/jobs/{id}"))
            .bearer_auth(key)
            .send()
            .await
            .map_err(|e| unreachable(base, &e))?;
        let job: Value = serde_json::from_slice(&answer(response).await?)
            .map_err(|e| format!("the gateway's answer is not a fine-tuning job: {e}"))?;
        let status = job["status"].as_str().unwrap_or("unknown").to_owned();
        let event = newest_event(http, base, key, id).await;
        let line = tune_line(&status, started.elapsed(), event.as_deref());
        if live {
            eprint!("\r{line:<LINE_WIDTH$}");
        } else if line != last_line {
            eprintln!("{line}");
        }
        last_line = line;
        if matches!(status.as_str(), "succeeded" | "failed" | "cancelled") {
            if live {
                eprintln!();
            }
            return Ok(job);
        }
        tokio::time::sleep(every).await;
    }
}

/// The message of job `id`'s newest event, if the gateway has one to tell. Only decoration of
/// the progress line: an event list that cannot be read leaves the message out rather than
/// ending the wait (the job itself was just read).
async fn newest_event(http: &reqwest::Client, base: &str, key: &str, id: &str) -> Option<String> {
    let response = http
        .get(format!("{base}/v1/fine_tuning/jobs/{id}/events"))
        .query(&[("limit", "1")])
        .bearer_auth(key)
        .send()
        .await
        .ok()?;
    let events: Value = serde_json::from_slice(&answer(response).await.ok()?).ok()?;
    events["data"][0]["message"].as_str().map(str::to_owned)
}

/// The widest progress line, so it fits an 80-column terminal redrawn in place.
const LINE_WIDTH: usize = 79;

/// `running  03:12  Job started running`: the status, the time spent and the newest event's
/// message, on one line at most [`LINE_WIDTH`] characters wide. Control characters in the
/// message (it may carry a provider's words) are left out, so it cannot move the cursor.
fn tune_line(status: &str, elapsed: Duration, event: Option<&str>) -> String {
    let mut line = progress_line(status, None, elapsed);
    if let Some(event) = event {
        let event: String = event
            .split(['\r', '\n'])
            .next()
            .unwrap_or_default()
            .chars()
            .filter(|c| !c.is_control())
            .collect();
        let event = event.trim();
        if !event.is_empty() {
            line.push_str("  ");
            line.push_str(event);
        }
    }
    if line.chars().count() > LINE_WIDTH {
        line = line.chars().take(LINE_WIDTH - 3).collect();
        line.push_str("...");
    }
    line
}

/// What a failed or cancelled job says of why: `: <message> (code <code>, param <param>)`, with
/// the parts it has, or nothing.
fn job_error(job: &Value) -> String {
    let error = &job["error"];
    let mut out = String::new();
    if let Some(message) = error["message"].as_str().filter(|m| !m.is_empty()) {
        out.push_str(": ");
        out.push_str(message);
    }
    let details: Vec<String> = [("code", &error["code"]), ("param", &error["param"])]
        .into_iter()
        .filter_map(|(name, v)| match v {
            Value::String(s) if !s.is_empty() => Some(format!("{name} {s}")),
            Value::Number(n) => Some(format!("{name} {n}")),
            _ => None,
        })
        .collect();
    if !details.is_empty() {
        out.push_str(&format!(" ({})", details.join(", ")));
    }
    out
}

/// How to use the trained model: an image request through the gateway, as a shell command (the
/// key stays `$GATEWAY_API_KEY`: it is never printed).
fn usage_hint(base: &str, model: &str, trigger: Option<&str>) -> String {
    let prompt = match trigger {
        Some(word) => format!("{word} in a sunlit garden, photo"),
        None => "<your trigger word> in a sunlit garden, photo".to_owned(),
    };
    let body = json!({"model": model, "prompt": prompt}).to_string();
    format!(
        "trained: use the model in image requests, with its trigger word in the prompt, e.g.\n  \
         curl {} -H \"Authorization: Bearer $GATEWAY_API_KEY\" \
         -H 'Content-Type: application/json' -d {}",
        shell_quote(&format!("{base}/v1/images/generations")),
        shell_quote(&body)
    )
}

/// `s` as one single-quoted POSIX shell word.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
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

    #[test]
    fn a_progress_of_0_before_the_end_is_unknown() {
        let job = |status: &str, progress: Value| json!({"status": status, "progress": progress});
        assert_eq!(known_progress(&job("queued", json!(0))), None);
        assert_eq!(known_progress(&job("in_progress", json!(0))), None);
        assert_eq!(known_progress(&job("failed", json!(0))), None);
        assert_eq!(known_progress(&job("in_progress", json!(35))), Some(35));
        assert_eq!(known_progress(&job("completed", json!(100))), Some(100));
        assert_eq!(known_progress(&job("in_progress", Value::Null)), None);
        assert_eq!(known_progress(&json!({"status": "in_progress"})), None);
        // What the CLI shows of a WaveSpeed job running: its status and the time, no percent.
        let at = Duration::from_secs(5);
        let running = job("in_progress", json!(0));
        assert_eq!(
            progress_line("in_progress", known_progress(&running), at),
            "in_progress  00:05"
        );
    }

    fn tune_args(extra: &[&str]) -> Tune {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            tune: Tune,
        }
        let args = [
            "gateway",
            "d.zip",
            "--model",
            "wavespeed/flux-dev",
            "--key",
            "k",
        ];
        Cli::parse_from(args.iter().chain(extra)).tune
    }

    #[test]
    fn a_job_carries_only_the_options_given() {
        assert_eq!(
            job_body(&tune_args(&[]), "file-1"),
            json!({"model": "wavespeed/flux-dev", "training_file": "file-1"})
        );
        let args = tune_args(&[
            "--trigger",
            "p3r5on",
            "--steps",
            "1500",
            "--rank",
            "32",
            "--learning-rate",
            "0.0004",
            "--suffix",
            "me",
        ]);
        assert_eq!(args.poll_ms, 5000);
        assert_eq!(
            job_body(&args, "file-1"),
            json!({"model": "wavespeed/flux-dev", "training_file": "file-1", "suffix": "me",
                   "provider_options": {"trigger_word": "p3r5on", "steps": 1500,
                                        "lora_rank": 32, "learning_rate": 0.0004}})
        );
        assert_eq!(
            job_body(&tune_args(&["--rank", "8"]), "file-1")["provider_options"],
            json!({"lora_rank": 8})
        );
        assert!(finite_number("inf").is_err() && finite_number("NaN").is_err());
    }

    #[test]
    fn training_data_is_a_url_or_a_zip_named_when_refused() {
        assert!(matches!(
            TrainingData::open("HTTPS://files.example/d.zip"),
            Ok(TrainingData::Url(u)) if u == "HTTPS://files.example/d.zip"
        ));
        let e = TrainingData::open("ftp://files.example/d.zip").unwrap_err();
        assert!(e.contains("ftp://files.example/d.zip"), "{e}");

        let dir = std::env::temp_dir().join(format!("gw-cli-tune-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let zip = dir.join("photos.zip");
        std::fs::write(&zip, b"PK\x03\x04 and the rest").unwrap();
        let short = dir.join("short.zip");
        std::fs::write(&short, b"PK").unwrap();
        let png = dir.join("photo.png");
        std::fs::write(&png, b"\x89PNG\r\n\x1a\n").unwrap();
        let path = |p: &Path| p.display().to_string();

        match TrainingData::open(&path(&zip)).unwrap() {
            TrainingData::Zip {
                name,
                len,
                mut file,
                ..
            } => {
                assert_eq!((name.as_str(), len), ("photos.zip", 17));
                // Read from its start again: the whole zip is uploaded.
                let mut all = Vec::new();
                file.read_to_end(&mut all).unwrap();
                assert!(all.starts_with(ZIP_MAGIC) && all.len() == 17);
            }
            TrainingData::Url(_) => panic!("a file read as a URL"),
        }
        for (p, why) in [
            (path(&short), "is not a zip file"),
            (path(&png), "is not a zip file"),
            (path(&dir.join("missing.zip")), "cannot read"),
            (path(&dir), "cannot read"),
        ] {
            let e = TrainingData::open(&p).unwrap_err();
            assert!(e.contains(&p) && e.contains(why), "{e}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn only_job_ids_go_into_urls() {
        check_job_id("ftjob-ALPJXe7ZtXz2FBae25W4Y80H").unwrap();
        for bad in ["", "ftjob-1/../../v1/files", "ftjob-1?x=1", "ftjob 1"] {
            assert!(check_job_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_tune_line_fits_a_terminal_and_carries_no_control_characters() {
        let at = Duration::from_secs(192);
        assert_eq!(tune_line("queued", at, None), "queued  03:12");
        assert_eq!(
            tune_line("running", at, Some("Job started running")),
            "running  03:12  Job started running"
        );
        assert_eq!(
            tune_line(
                "running",
                at,
                Some("Training\x1b[2J: 50% done\nsecond line")
            ),
            "running  03:12  Training[2J: 50% done"
        );
        assert_eq!(tune_line("running", at, Some(" \r ")), "running  03:12");
        let long = tune_line("running", at, Some(&"é".repeat(200)));
        assert_eq!(long.chars().count(), LINE_WIDTH);
        assert!(long.ends_with("..."));
    }

    #[test]
    fn a_failure_says_why_with_what_it_has() {
        let failed = json!({"error": {"code": "invalid_request", "message": "too few images",
                                      "param": null}});
        assert_eq!(
            job_error(&failed),
            ": too few images (code invalid_request)"
        );
        let with_param = json!({"error": {"code": 400, "message": "bad", "param": "steps"}});
        assert_eq!(job_error(&with_param), ": bad (code 400, param steps)");
        assert_eq!(job_error(&json!({"error": null})), "");
    }

    #[test]
    fn the_usage_hint_is_a_shell_command_without_the_key() {
        let hint = usage_hint(
            "http://gw:8080",
            "ft:wavespeed/flux-dev:o'k:ftjob-1",
            Some("sks"),
        );
        assert!(
            hint.contains("curl 'http://gw:8080/v1/images/generations'"),
            "{hint}"
        );
        assert!(
            hint.contains("\"Authorization: Bearer $GATEWAY_API_KEY\""),
            "{hint}"
        );
        // The quote in the name closes, escapes and reopens the single-quoted word.
        assert!(
            hint.contains(
                r#"-d '{"model":"ft:wavespeed/flux-dev:o'\''k:ftjob-1","prompt":"sks in"#
            ),
            "{hint}"
        );
        assert_eq!(shell_quote("a'b"), r"'a'\''b'");
    }
}
