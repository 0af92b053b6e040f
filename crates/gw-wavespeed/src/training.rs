//! [`TrainingModel`] on WaveSpeed's LoRA trainers: a trainer is an ordinary v3 task whose input
//! is a zip of images (`data`, a URL) and whose output is the URL of the trained weights
//! (`outputs[0]`); the weights serve images through the family's LoRA model
//! (`loras: [{path, scale}]`, [`crate::models`]).
//!
//! - A run is checked against its trainer's documented options before any IO, submitted once
//!   (its task id, with the steps asked, is the job id) and polled one read at a time.
//! - Bytes of training data are first uploaded to WaveSpeed's media storage, which answers the
//!   URL the trainer fetches.
//! - The price is asked of `POST /api/v3/model/price` with the input the submit sends, steps
//!   included, since the price formula is evaluated over the inputs and one without its steps
//!   prices the trainer's floor.

use gateway_core::http::{read_json, reqwest};
use gateway_core::{
    Billing, Cost, Error, JobId, JobStatus, LoraModel, MediaInput, Result, TrainingModel,
    TrainingOutput, TrainingRequest, per_step_billing,
};
use serde_json::{Map, Value, json};

use crate::job::Prediction;
use crate::wire::{Envelope, ModelPrice, Uploaded};
use crate::{PROVIDER, WaveSpeedClient, error};

/// One trainer family: the trainer, the LoRA model its weights serve, and its steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Trainer {
    /// The family, as routes name it (`wavespeed/flux-dev`).
    pub family: &'static str,
    /// The trainer's model id (`POST /api/v3/{trainer}`).
    pub trainer: &'static str,
    /// The image model that takes the trained LoRAs.
    pub lora_model: &'static str,
    /// How many LoRAs one request of `lora_model` may carry.
    pub max_loras: u32,
    /// The fewest steps the trainer takes.
    pub min_steps: u64,
    /// The most steps the trainer takes.
    pub max_steps: u64,
    /// The steps it trains when none are asked (sent explicitly, so the bill is known).
    pub default_steps: u64,
}

/// The trainer families, from their documentation.
pub(crate) const TRAINERS: &[Trainer] = &[
    // https://doc.wavespeed.ai/docs-api/flux-dev-lora-trainer (the v3 `data` form: data,
    // trigger_word default "p3r5on", steps 500..4000 default 1000, learning_rate 0..1 default
    // 0.0004, lora_rank 1..64 default 16). Other revisions of the page print other ranges
    // (1000..10000 on the flux-dev-lora-trainer-turbo page, whose request posts to this
    // trainer); the one of the page's current `data` form is kept. The LoRA model and its
    // limit: https://wavespeed.ai/docs/docs-api/wavespeed-ai/flux-dev-lora ("max 4 items").
    Trainer {
        family: "flux-dev",
        trainer: "wavespeed-ai/flux-dev-lora-trainer",
        lora_model: "wavespeed-ai/flux-dev-lora",
        max_loras: 4,
        min_steps: 500,
        max_steps: 4000,
        default_steps: 1000,
    },
    // https://wavespeed.ai/models/wavespeed-ai/z-image-lora-trainer/llms.txt (data, trigger_word,
    // steps default 1000, learning_rate default 0.0001, lora_rank default 16) and
    // https://wavespeed.ai/docs/docs-api/z-image-lora-trainer. The steps range could not be read
    // whole (unverified): 1000..4000, the narrowest any revision of the `data` form prints, so
    // the gateway sends no value some revision refuses. LoRA model:
    // https://wavespeed.ai/docs/docs-api/z-image-turbo-lora ("up to 3 LoRAs").
    Trainer {
        family: "z-image",
        trainer: "wavespeed-ai/z-image-lora-trainer",
        lora_model: "wavespeed-ai/z-image/turbo-lora",
        max_loras: 3,
        min_steps: 1000,
        max_steps: 4000,
        default_steps: 1000,
    },
    // The trainer is named by its LoRA model's page ("Please use
    // wavespeed-ai/qwen-image-lora-trainer to make sure your LoRA can use in this model",
    // https://wavespeed.ai/docs/docs-api/wavespeed-ai/qwen-image-text-to-image-lora, which also
    // gives "max 3 items"); its inputs are those of the `data` form of its sibling
    // https://wavespeed.ai/models/wavespeed-ai/qwen-image-2512-lora-trainer/llms.txt (data,
    // trigger_word, steps default 1000, learning_rate, lora_rank). The steps range is
    // unverified, as for z-image.
    Trainer {
        family: "qwen-image",
        trainer: "wavespeed-ai/qwen-image-lora-trainer",
        lora_model: "wavespeed-ai/qwen-image/text-to-image-lora",
        max_loras: 3,
        min_steps: 1000,
        max_steps: 4000,
        default_steps: 1000,
    },
];

/// The steps a bare task id (one submitted outside the gateway, without the steps in its job
/// id) is billed: flux-dev's default.
const BARE_TASK_STEPS: u64 = 1000;

/// The options every trainer of the table takes (the `data` form's fields but `data`, which the
/// gateway sets from the training file).
const OPTIONS: [&str; 4] = ["trigger_word", "steps", "learning_rate", "lora_rank"];

/// `lora_rank` on every trainer's page: 1..64.
const LORA_RANKS: (u64, u64) = (1, 64);

/// The upload endpoint of the official SDK's `upload()` at
/// <https://github.com/WaveSpeedAI/wavespeed-python/blob/19c2efaaf3134eedb6136120d2ded74ddcb60805/src/wavespeed/api/client.py>:
/// one multipart `file`, answered `{code: 200, data: {download_url}}`. (Later SDK versions ask
/// `/api/v3/media/uploads` for a signed PUT instead; this single call is what that revision
/// documents.)
const UPLOAD_PATH: &str = "/api/v3/media/upload/binary";

/// The quote endpoint (`fetchPricing` in the official MCP server,
/// <https://github.com/WaveSpeedAI/mcp-server/blob/bb1c8fb64f282c9a74464f44194b21fee29f2974/src/lib/api.ts>).
const PRICE_PATH: &str = "/api/v3/model/price";

/// The family's entry for `model`: a family name (`flux-dev`) or, as an alias of its family, the
/// trainer's own id (`wavespeed-ai/flux-dev-lora-trainer`).
pub(crate) fn trainer(model: &str) -> Option<&'static Trainer> {
    TRAINERS
        .iter()
        .find(|t| t.family == model || t.trainer == model)
}

/// Whether `id` names a trainer family (for announcing configured models).
pub(crate) fn is_training_model(id: &str) -> bool {
    trainer(id).is_some()
}

fn families() -> String {
    TRAINERS
        .iter()
        .map(|t| t.family)
        .collect::<Vec<_>>()
        .join(", ")
}

fn option_error(name: &str, message: String) -> Error {
    Error::invalid_request(message).with_param(format!("provider_options.{name}"))
}

/// A run the trainer can do: its trainer, its steps and its input without `data`.
#[derive(Debug, Clone, PartialEq)]
struct Run {
    trainer: &'static Trainer,
    steps: u64,
    input: Map<String, Value>,
}

/// Checks `req` before any IO, naming the field, and builds the trainer's input (all but
/// `data`), with the steps always set.
fn run(req: &TrainingRequest) -> Result<Run> {
    let trainer = trainer(&req.model).ok_or_else(|| {
        Error::invalid_request(format!(
            "WaveSpeed trains no family `{}`; its families are {}",
            req.model.escape_debug(),
            families()
        ))
        .with_param("model")
    })?;
    check_data(&req.data)?;
    let mut input = Map::new();
    let mut steps = trainer.default_steps;
    for (key, value) in &req.options {
        match key.as_str() {
            "trigger_word" => {
                let Value::String(word) = value else {
                    return Err(option_error(key, "`trigger_word` must be a string".into()));
                };
                if req.trigger_word.as_ref().is_some_and(|w| w != word) {
                    return Err(option_error(
                        key,
                        "`trigger_word` is given twice with two values: give it once".into(),
                    ));
                }
            }
            "steps" => {
                let (min, max) = (trainer.min_steps, trainer.max_steps);
                steps = value
                    .as_u64()
                    .filter(|s| (min..=max).contains(s))
                    .ok_or_else(|| {
                        option_error(
                            key,
                            format!(
                                "`steps` of the {} trainer must be a whole number from {min} to \
                                 {max}, not {value}",
                                trainer.family
                            ),
                        )
                    })?;
            }
            "learning_rate" => {
                let ok = value
                    .as_f64()
                    .is_some_and(|r| r.is_finite() && r > 0.0 && r <= 1.0);
                if !ok {
                    return Err(option_error(
                        key,
                        format!(
                            "`learning_rate` must be a number above 0 and at most 1, not {value}"
                        ),
                    ));
                }
                input.insert(key.clone(), value.clone());
            }
            "lora_rank" => {
                let (min, max) = LORA_RANKS;
                if !value.as_u64().is_some_and(|r| (min..=max).contains(&r)) {
                    return Err(option_error(
                        key,
                        format!(
                            "`lora_rank` must be a whole number from {min} to {max}, not {value}"
                        ),
                    ));
                }
                input.insert(key.clone(), value.clone());
            }
            "data" => {
                return Err(option_error(
                    key,
                    "`data` is set by the gateway from the training file".into(),
                ));
            }
            other => {
                return Err(option_error(
                    other,
                    format!(
                        "the {} trainer has no option `{}` (its options: {})",
                        trainer.family,
                        other.escape_debug(),
                        OPTIONS.join(", ")
                    ),
                ));
            }
        }
    }
    let trigger_word = req
        .trigger_word
        .clone()
        .or_else(|| match req.options.get("trigger_word") {
            Some(Value::String(word)) => Some(word.clone()),
            _ => None,
        });
    if let Some(word) = trigger_word {
        input.insert("trigger_word".into(), json!(word));
    }
    input.insert("steps".into(), json!(steps));
    Ok(Run {
        trainer,
        steps,
        input,
    })
}

/// A zip's first bytes: a local file header (`PK\x03\x04`) or, for a spanned archive, the
/// spanning marker (`PK\x07\x08`) (PKWARE's APPNOTE.TXT, 4.3.7 and 8.5.3).
fn is_zip(data: &[u8]) -> bool {
    data.starts_with(b"PK\x03\x04") || data.starts_with(b"PK\x07\x08")
}

/// The training data must be an http(s) URL WaveSpeed can fetch, or the bytes of a zip.
fn check_data(data: &MediaInput) -> Result<()> {
    let bad = |m: &str| Error::invalid_request(m.to_owned()).with_param("training_file");
    match data {
        MediaInput::Url(url) => {
            let url = url.trim();
            let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
            if lower.starts_with("https://") || lower.starts_with("http://") {
                Ok(())
            } else {
                Err(bad(
                    "the training data must be an http(s) URL of a zip WaveSpeed can fetch",
                ))
            }
        }
        MediaInput::Bytes { data, .. } if data.is_empty() => Err(bad("the training data is empty")),
        MediaInput::Bytes { data, .. } if !is_zip(data) => Err(bad(
            "the training data must be a zip of images (with optional .txt captions)",
        )),
        MediaInput::Bytes { .. } => Ok(()),
        _ => Err(bad("training data of a kind WaveSpeed cannot take")),
    }
}

/// The steps `req` asks (else its trainer's default): what it is billed.
fn asked_steps(req: &TrainingRequest) -> u64 {
    req.options
        .get("steps")
        .and_then(Value::as_u64)
        .or_else(|| trainer(&req.model).map(|t| t.default_steps))
        .unwrap_or(BARE_TASK_STEPS)
}

/// The gateway's id of a submitted run: the task id, then the steps asked (`<task>:<steps>`). A
/// finished task does not say its steps, and the run may end in another gateway process, which
/// keeps only this id: the bill is counted from it.
fn job_id(task: &str, steps: u64) -> JobId {
    JobId(format!("{task}:{steps}"))
}

/// The task id and the steps of an id of [`job_id`]; a bare task id (submitted outside the
/// gateway) is billed flux-dev's default steps. Anything else is not an id of this gateway.
fn parse_job_id(job: &JobId) -> Result<(JobId, u64)> {
    match job.0.split_once(':') {
        None => Ok((job.clone(), BARE_TASK_STEPS)),
        Some((task, steps)) => match steps.parse::<u64>() {
            Ok(steps) => Ok((JobId(task.to_owned()), steps)),
            Err(_) => Err(Error::invalid_request(format!(
                "`{}` is not a WaveSpeed training job id (`<task>:<steps>`)",
                job.0.escape_debug()
            ))
            .with_provider(PROVIDER)),
        },
    }
}

/// The URL of the trained weights: a completed trainer's first output.
fn weights_url(done: &Prediction) -> Result<String> {
    let url = done
        .outputs
        .first()
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| {
            let lower = s.get(..8).unwrap_or(s).to_ascii_lowercase();
            lower.starts_with("https://") || lower.starts_with("http://")
        })
        .ok_or_else(|| {
            Error::decode(format!(
                "training task `{}` completed without the URL of its weights",
                done.id
            ))
        })?;
    Ok(url.to_owned())
}

/// An exact amount of USD from a JSON number (or a decimal string), through its decimal
/// text: `0.85`, and the exponent form serde_json writes for small floats (`1.25e-5`). A
/// negative amount, or one finer than a nano-dollar, is none.
fn usd(value: &Value) -> Option<Cost> {
    let text = match value {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_owned(),
        _ => return None,
    };
    let (mantissa, exponent) = match text.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i32>().ok()?),
        None => (text.as_str(), 0),
    };
    if !(-40..=40).contains(&exponent) {
        return None;
    }
    let mantissa = mantissa.strip_prefix('+').unwrap_or(mantissa);
    let (whole, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits_only = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && frac.is_empty()) || !digits_only(whole) || !digits_only(frac) {
        return None;
    }
    // Move the decimal point `exponent` places in the digits.
    let mut digits = format!("{whole}{frac}");
    let mut point = whole.len() as i64 + i64::from(exponent);
    if point < 0 {
        digits.insert_str(0, &"0".repeat(point.unsigned_abs() as usize));
        point = 0;
    }
    let point = point as usize;
    if point > digits.len() {
        digits.push_str(&"0".repeat(point - digits.len()));
    }
    let (whole, frac) = digits.split_at(point);
    let whole = if whole.is_empty() { "0" } else { whole };
    let frac = frac.trim_end_matches('0');
    let decimal = if frac.is_empty() {
        whole.to_owned()
    } else {
        format!("{whole}.{frac}")
    };
    decimal.parse().ok()
}

/// The cost of a quote: its `discounted_price` (what the account pays) where given, else its
/// `price`, in USD.
fn quoted_cost(quote: &ModelPrice) -> Result<Cost> {
    if let Some(currency) = quote.currency.as_deref().map(str::trim)
        && !currency.is_empty()
        && !currency.eq_ignore_ascii_case("usd")
    {
        return Err(Error::decode(format!(
            "the price of `{}` is quoted in {}, not USD",
            quote.model_id.as_deref().unwrap_or_default(),
            currency.escape_debug()
        )));
    }
    let price = quote
        .discounted_price
        .as_ref()
        .filter(|v| !v.is_null())
        .or(quote.price.as_ref().filter(|v| !v.is_null()))
        .ok_or_else(|| {
            Error::decode("the price quote has neither `discounted_price` nor `price`")
        })?;
    usd(price).ok_or_else(|| {
        Error::decode(format!(
            "the price quote `{price}` is not an amount of USD the gateway can read"
        ))
    })
}

/// The `data` of an envelope, or the error its `code` stands for.
fn envelope_data<T: serde::de::DeserializeOwned + Default>(
    envelope: Envelope,
    what: &str,
) -> Result<T> {
    if envelope.code.is_some_and(|c| c != 200) {
        return Err(error::envelope_error(&envelope));
    }
    let data = envelope.data.unwrap_or(Value::Null);
    if data.is_null() {
        return Err(Error::decode(format!("the {what} answer has no `data`")));
    }
    serde_json::from_value(data.clone()).map_err(|e| {
        Error::decode(format!("unexpected {what} answer: {e}")).with_body(&data.to_string())
    })
}

impl WaveSpeedClient {
    /// Uploads a dataset zip to WaveSpeed's media storage and answers where the trainer can
    /// fetch it. No task exists yet: any failure here is an ordinary error, never in doubt.
    async fn upload_dataset(&self, data: reqwest::Body, len: usize) -> Result<String> {
        let part = reqwest::multipart::Part::stream_with_length(data, len as u64)
            .file_name("dataset.zip")
            .mime_str("application/zip")
            .map_err(|e| {
                Error::invalid_request("cannot write the dataset's upload")
                    .with_source(e)
                    .with_provider(PROVIDER)
            })?;
        let form = reqwest::multipart::Form::new().part("file", part);
        let response = self
            .upstream
            .post_multipart(UPLOAD_PATH, form, error::classify)
            .await?;
        let envelope: Envelope = read_json(PROVIDER, response).await?;
        let uploaded: Uploaded =
            envelope_data(envelope, "upload").map_err(|e| e.with_provider(PROVIDER))?;
        let url = uploaded
            .download_url
            .map(|u| u.trim().to_owned())
            .filter(|u| {
                let lower = u.get(..8).unwrap_or(u).to_ascii_lowercase();
                lower.starts_with("https://") || lower.starts_with("http://")
            })
            .ok_or_else(|| {
                Error::decode("the upload answered no `download_url`").with_provider(PROVIDER)
            })?;
        tracing::info!(bytes = len, "wavespeed dataset uploaded");
        Ok(url)
    }
}

impl TrainingModel for WaveSpeedClient {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    /// Refuses, naming the field: a family WaveSpeed does not train (`model`), training data
    /// that is neither an http(s) URL nor a zip (`training_file`), an option its trainer does
    /// not have or a value out of its range (`provider_options.<name>`), and a trigger word
    /// given twice with two values (`provider_options.trigger_word`).
    fn check_training(&self, req: &TrainingRequest) -> Result<()> {
        run(req).map(|_| ()).map_err(|e| e.with_provider(PROVIDER))
    }

    /// The steps asked (else the trainer's default), one `training_step` each.
    fn training_billing(&self, req: &TrainingRequest) -> Billing {
        per_step_billing(asked_steps(req))
    }

    /// WaveSpeed's price for the run, for the input the submit sends (its steps always set).
    /// Training data given as bytes is not uploaded for a quote (a quote is a read): its
    /// `data` is left out, which the price does not depend on (unverified: the formulas are
    /// not published; the official CLI names steps as the price driver).
    async fn quote_training(&self, req: &TrainingRequest) -> Result<Option<Cost>> {
        let Run { trainer, input, .. } = run(req).map_err(|e| e.with_provider(PROVIDER))?;
        let mut inputs = input;
        if let MediaInput::Url(url) = &req.data {
            inputs.insert("data".into(), json!(url.trim()));
        }
        let body = json!({"model_id": trainer.trainer, "inputs": inputs});
        let response = self
            .upstream
            .post_json(PRICE_PATH, &body, error::classify)
            .await?;
        let envelope: Envelope = read_json(PROVIDER, response).await?;
        let quote: ModelPrice =
            envelope_data(envelope, "price").map_err(|e| e.with_provider(PROVIDER))?;
        let cost = quoted_cost(&quote).map_err(|e| e.with_provider(PROVIDER))?;
        Ok(Some(cost))
    }

    /// Uploads bytes of training data first (a failure there is ordinary: no task exists), then
    /// submits the run once; the job id is the task id with the steps asked.
    async fn submit_training(&self, req: TrainingRequest) -> Result<JobId> {
        let Run {
            trainer,
            steps,
            mut input,
        } = run(&req).map_err(|e| e.with_provider(PROVIDER))?;
        let data = match &req.data {
            MediaInput::Url(url) => url.trim().to_owned(),
            MediaInput::Bytes { data, .. } => {
                self.upload_dataset(reqwest::Body::from(data.clone()), data.len())
                    .await?
            }
            _ => {
                return Err(Error::invalid_request(
                    "training data of a kind WaveSpeed cannot take",
                )
                .with_param("training_file")
                .with_provider(PROVIDER));
            }
        };
        input.insert("data".into(), json!(data));
        let submitted = self.submit(trainer.trainer, &input).await?;
        Ok(job_id(&submitted.id, steps))
    }

    /// One read of the task. A completed task is the URL of its weights (its first output),
    /// billed at the steps its job id carries; a failed one is its error by its message.
    async fn poll_training(&self, job: &JobId) -> Result<JobStatus<TrainingOutput>> {
        let (task, steps) = parse_job_id(job)?;
        let prediction = self.prediction(&task).await?;
        Ok(match prediction.job_status() {
            JobStatus::Completed(done) => match weights_url(&done) {
                Ok(url) => JobStatus::Completed(TrainingOutput::new(url, per_step_billing(steps))),
                Err(e) => JobStatus::Failed(e.with_provider(PROVIDER)),
            },
            JobStatus::Failed(e) => JobStatus::Failed(e),
            JobStatus::Queued => JobStatus::Queued,
            JobStatus::InProgress { progress } => JobStatus::InProgress { progress },
            _ => JobStatus::InProgress { progress: None },
        })
    }

    fn lora_model(&self, family: &str) -> Option<LoraModel> {
        trainer(family).map(|t| LoraModel::new(t.lora_model, t.max_loras))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gateway_core::{ErrorKind, PriceUnit};

    fn flux(data: MediaInput) -> TrainingRequest {
        TrainingRequest::new("flux-dev", data)
    }

    fn url() -> MediaInput {
        MediaInput::Url("https://files.example.com/faces.zip".into())
    }

    fn with(options: Value) -> TrainingRequest {
        let mut req = flux(url());
        req.options = options.as_object().unwrap().clone();
        req
    }

    fn refused(req: &TrainingRequest) -> (ErrorKind, String) {
        let e = run(req).unwrap_err();
        (e.kind().clone(), e.param().unwrap_or_default().to_owned())
    }

    fn invalid(param: &str) -> (ErrorKind, String) {
        (ErrorKind::InvalidRequest, param.to_owned())
    }

    #[test]
    fn the_table_is_consistent_with_the_lora_models() {
        for (i, t) in TRAINERS.iter().enumerate() {
            assert!(
                (t.min_steps..=t.max_steps).contains(&t.default_steps),
                "{}",
                t.family
            );
            assert!(crate::job::valid_model_path(t.trainer), "{}", t.trainer);
            let lora = crate::models::spec(t.lora_model);
            assert!(
                lora.is_known(),
                "{} is not in the models table",
                t.lora_model
            );
            assert_eq!(lora.max_loras, t.max_loras, "{}", t.lora_model);
            assert!(TRAINERS[i + 1..].iter().all(|o| o.family != t.family));
        }
        assert_eq!(
            trainer("flux-dev").unwrap().trainer,
            "wavespeed-ai/flux-dev-lora-trainer"
        );
        assert_eq!(
            trainer("wavespeed-ai/z-image-lora-trainer").unwrap().family,
            "z-image"
        );
        assert!(trainer("sdxl").is_none() && trainer("wavespeed/flux-dev").is_none());
        assert!(is_training_model("qwen-image"));
        assert!(!is_training_model("wavespeed-ai/flux-dev"));
    }

    #[test]
    fn the_input_sets_the_steps_and_carries_the_options() {
        let r = run(&flux(url())).unwrap();
        assert_eq!(r.trainer.family, "flux-dev");
        assert_eq!(r.steps, 1000);
        assert_eq!(Value::Object(r.input), json!({"steps": 1000}));

        let mut req = with(json!({"steps": 2500, "learning_rate": 0.0004, "lora_rank": 32}));
        req.trigger_word = Some("p3r5on".into());
        let r = run(&req).unwrap();
        assert_eq!(r.steps, 2500);
        assert_eq!(
            Value::Object(r.input),
            json!({"trigger_word": "p3r5on", "steps": 2500, "learning_rate": 0.0004,
                   "lora_rank": 32})
        );
        // The trigger word as an option, or both the same, is one trigger word.
        let r = run(&with(json!({"trigger_word": "sks"}))).unwrap();
        assert_eq!(r.input["trigger_word"], json!("sks"));
        let mut req = with(json!({"trigger_word": "sks"}));
        req.trigger_word = Some("sks".into());
        assert_eq!(run(&req).unwrap().input["trigger_word"], json!("sks"));
        // The trainer's own id is an alias of its family.
        let mut req = with(json!({}));
        req.model = "wavespeed-ai/qwen-image-lora-trainer".into();
        assert_eq!(run(&req).unwrap().trainer.family, "qwen-image");
    }

    #[test]
    fn what_a_trainer_cannot_do_is_refused_naming_the_field() {
        let mut req = flux(url());
        req.model = "sdxl".into();
        let e = run(&req).unwrap_err();
        assert_eq!(
            (e.kind(), e.param()),
            (&ErrorKind::InvalidRequest, Some("model"))
        );
        assert!(e.message().contains("flux-dev, z-image, qwen-image"), "{e}");

        let cases = [
            (json!({"epochs": 3}), "provider_options.epochs"),
            (
                json!({"data": "https://x.example/a.zip"}),
                "provider_options.data",
            ),
            (json!({"trigger_word": 7}), "provider_options.trigger_word"),
            (json!({"steps": 499}), "provider_options.steps"),
            (json!({"steps": 4001}), "provider_options.steps"),
            (json!({"steps": 1000.5}), "provider_options.steps"),
            (json!({"steps": "1000"}), "provider_options.steps"),
            (json!({"steps": -1}), "provider_options.steps"),
            (
                json!({"learning_rate": 0}),
                "provider_options.learning_rate",
            ),
            (
                json!({"learning_rate": 1.5}),
                "provider_options.learning_rate",
            ),
            (
                json!({"learning_rate": "0.1"}),
                "provider_options.learning_rate",
            ),
            (json!({"lora_rank": 0}), "provider_options.lora_rank"),
            (json!({"lora_rank": 65}), "provider_options.lora_rank"),
            (json!({"lora_rank": 16.5}), "provider_options.lora_rank"),
        ];
        for (options, param) in cases {
            assert_eq!(refused(&with(options.clone())), invalid(param), "{options}");
        }
        // The edges are in range.
        run(&with(
            json!({"steps": 500, "learning_rate": 1, "lora_rank": 64}),
        ))
        .unwrap();
        run(&with(json!({"steps": 4000, "lora_rank": 1}))).unwrap();
        // z-image's range is its own.
        let mut req = with(json!({"steps": 500}));
        req.model = "z-image".into();
        assert_eq!(refused(&req), invalid("provider_options.steps"));

        let mut req = with(json!({"trigger_word": "sks"}));
        req.trigger_word = Some("p3r5on".into());
        assert_eq!(refused(&req), invalid("provider_options.trigger_word"));

        for data in [
            MediaInput::Url("ftp://files.example.com/a.zip".into()),
            MediaInput::bytes(Vec::new(), "application/zip"),
            MediaInput::bytes(b"\x89PNG\r\n\x1a\n".to_vec(), "application/zip"),
        ] {
            assert_eq!(refused(&flux(data)), invalid("training_file"));
        }
        run(&flux(MediaInput::bytes(
            b"PK\x03\x04rest".to_vec(),
            "application/zip",
        )))
        .unwrap();
    }

    #[test]
    fn billing_is_the_steps_asked_or_the_default() {
        let b = per_step_billing(asked_steps(&with(json!({"steps": 3000}))));
        assert_eq!(b.units, 3000);
        assert_eq!(b.charges[0].unit, PriceUnit::TrainingStep);
        assert_eq!(b.charges[0].quantity, 3000);
        assert_eq!(asked_steps(&flux(url())), 1000);
    }

    #[test]
    fn a_job_id_carries_the_steps_so_any_process_bills_them() {
        let id = job_id("6488c2754f6f4dfea924382fa14d11bd", 2500);
        assert_eq!(id.0, "6488c2754f6f4dfea924382fa14d11bd:2500");
        let (task, steps) = parse_job_id(&id).unwrap();
        assert_eq!(
            (task.0.as_str(), steps),
            ("6488c2754f6f4dfea924382fa14d11bd", 2500)
        );
        let (task, steps) = parse_job_id(&JobId("abc123".into())).unwrap();
        assert_eq!((task.0.as_str(), steps), ("abc123", BARE_TASK_STEPS));
        let e = parse_job_id(&JobId("abc123:many".into())).unwrap_err();
        assert_eq!(e.kind(), &ErrorKind::InvalidRequest);
    }

    #[test]
    fn a_completed_run_is_the_url_of_its_weights() {
        let done = Prediction {
            id: "t1".into(),
            status: "completed".into(),
            outputs: vec![json!(" https://cdn.example/loras/t1.safetensors ")],
            ..Prediction::default()
        };
        assert_eq!(
            weights_url(&done).unwrap(),
            "https://cdn.example/loras/t1.safetensors"
        );
        for outputs in [
            vec![],
            vec![json!({"url": "https://x"})],
            vec![json!("not a url")],
        ] {
            let done = Prediction {
                id: "t2".into(),
                outputs,
                ..Prediction::default()
            };
            assert_eq!(weights_url(&done).unwrap_err().kind(), &ErrorKind::Decode);
        }
    }

    #[test]
    fn quoted_prices_are_read_exactly() {
        let cost = |v: Value| usd(&v).map(|c| c.to_string());
        assert_eq!(cost(json!(1.25)).as_deref(), Some("1.25"));
        assert_eq!(cost(json!(0.1)).as_deref(), Some("0.1"));
        assert_eq!(cost(json!(3)).as_deref(), Some("3"));
        assert_eq!(cost(json!(0.00001)).as_deref(), Some("0.00001"));
        assert_eq!(cost(json!(1.5e-7)).as_deref(), Some("0.00000015"));
        assert_eq!(cost(json!(2.5e3)).as_deref(), Some("2500"));
        assert_eq!(cost(json!("0.85")).as_deref(), Some("0.85"));
        assert_eq!(cost(json!(-1)), None);
        assert_eq!(cost(json!(1e-12)), None, "finer than a nano-dollar");
        assert_eq!(cost(json!(null)), None);
        assert_eq!(cost(json!("cheap")), None);

        let quote = |v: Value| serde_json::from_value::<ModelPrice>(v).unwrap();
        let q = quote(
            json!({"model_id": "m", "price": 1.5, "discounted_price": 1.2,
                              "currency": "USD"}),
        );
        assert_eq!(quoted_cost(&q).unwrap().to_string(), "1.2");
        let q = quote(json!({"model_id": "m", "price": 1.5}));
        assert_eq!(quoted_cost(&q).unwrap().to_string(), "1.5");
        let q = quote(json!({"model_id": "m", "price": 1.5, "currency": "CNY"}));
        assert_eq!(quoted_cost(&q).unwrap_err().kind(), &ErrorKind::Decode);
        let q = quote(json!({"model_id": "m"}));
        assert_eq!(quoted_cost(&q).unwrap_err().kind(), &ErrorKind::Decode);
    }
}
