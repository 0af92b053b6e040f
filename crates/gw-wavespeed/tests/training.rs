//! LoRA training and the LoRA models against a mock WaveSpeed (`gw_mock::MockUpstream`): the
//! quote, the dataset upload, the one submit, the polls, and what each failure means for a
//! retry.

use std::collections::BTreeMap;
use std::time::Duration;

use gateway_core::{
    ErrorKind, ImageModel, ImageRequest, JobId, JobStatus, MediaInput, MediaOutput, PollPolicy,
    PriceUnit, TrainingModel, TrainingRequest, per_step_billing,
};
use gw_mock::MockUpstream;
use gw_mock::fixture::{Respond, UpstreamExpect, UpstreamStep};
use gw_wavespeed::WaveSpeedClient;
use serde_json::{Value, json};

const KEY: &str = "wavespeed-test-key-0123456789";
const JOB: &str = "6488c2754f6f4dfea924382fa14d11bd";
const TRAINER: &str = "wavespeed-ai/flux-dev-lora-trainer";
const DATASET_URL: &str = "https://files.example.com/datasets/faces.zip";
const UPLOADED_URL: &str = "https://d1q70pf5vjeyhc.cloudfront.net/media/uploads/dataset.zip";
const WEIGHTS_URL: &str = "https://d1q70pf5vjeyhc.cloudfront.net/predictions/6488c2754f6f4dfea924382fa14d11bd/lora.safetensors";
/// The first bytes of a zip (a local file header), then anything.
const ZIP: &[u8] = b"PK\x03\x04\x14\x00\x00\x00\x08\x00dataset";

fn recorded(name: &str) -> Respond {
    Respond::recorded(env!("CARGO_MANIFEST_DIR"), name)
}

fn post(path: &str, json: Option<Value>, respond: Respond) -> UpstreamStep {
    UpstreamStep {
        expect: UpstreamExpect {
            method: Some("POST".into()),
            path: Some(path.into()),
            headers: BTreeMap::from([("authorization".to_owned(), json!(format!("Bearer {KEY}")))]),
            json,
            ..UpstreamExpect::default()
        },
        respond,
    }
}

fn submit(model: &str, json: Option<Value>, respond: Respond) -> UpstreamStep {
    post(&format!("/api/v3/{model}"), json, respond)
}

fn upload(respond: Respond) -> UpstreamStep {
    let mut step = post("/api/v3/media/upload/binary", None, respond);
    step.expect.multipart = Some(BTreeMap::from([(
        "file".to_owned(),
        json!({"content_type": "application/zip", "base64": gateway_core::encode_base64(ZIP)}),
    )]));
    step
}

/// The upload's answer as the official SDK reads it (`result["data"]["download_url"]`, after
/// checking `code == 200`), `upload()` in
/// https://github.com/WaveSpeedAI/wavespeed-python/blob/19c2efaaf3134eedb6136120d2ded74ddcb60805/src/wavespeed/api/client.py.
fn uploaded() -> Respond {
    Respond::json(json!({"code": 200, "message": "success", "data": {
        "download_url": UPLOADED_URL,
    }}))
}

fn poll(respond: Respond) -> UpstreamStep {
    UpstreamStep {
        expect: UpstreamExpect {
            method: Some("GET".into()),
            path: Some(format!("/api/v3/predictions/{JOB}/result")),
            headers: BTreeMap::from([("authorization".to_owned(), json!(format!("Bearer {KEY}")))]),
            ..UpstreamExpect::default()
        },
        respond,
    }
}

/// The recorded completed task, with `outputs` replaced.
fn completed_with(outputs: Value) -> Respond {
    let mut completed = recorded("result/completed.json");
    completed.json.as_mut().unwrap()["data"]["outputs"] = outputs;
    completed
}

async fn serve(steps: Vec<UpstreamStep>) -> (MockUpstream, WaveSpeedClient) {
    let mock = MockUpstream::start(steps).await.unwrap();
    let client = WaveSpeedClient::builder()
        .api_key(KEY)
        .base_url(mock.url())
        .poll_policy(PollPolicy {
            first_interval: Duration::ZERO,
            max_interval: Duration::from_millis(1),
            deadline: Duration::from_secs(60),
        })
        .build()
        .unwrap();
    (mock, client)
}

/// Every step played as expected, and the key went only in the header.
fn assert_clean(mock: &MockUpstream) {
    assert_eq!(mock.verify(), Vec::<String>::new());
    for got in mock.received() {
        assert!(!got.path.contains(KEY), "key in the URL");
        assert!(
            !String::from_utf8_lossy(&got.body).contains(KEY),
            "key in the body"
        );
    }
}

fn flux(data: MediaInput) -> TrainingRequest {
    let mut req = TrainingRequest::new("flux-dev", data);
    req.trigger_word = Some("p3r5on".into());
    req
}

#[tokio::test]
async fn a_quote_prices_the_input_the_submit_sends() {
    let (mock, client) = serve(vec![
        post(
            "/api/v3/model/price",
            None,
            // The MCP server's `ModelPrice`: price, discounted_price, discount_rate, currency.
            Respond::json(json!({"code": 200, "message": "success", "data": {
                "model_id": TRAINER, "price": 2.5, "discounted_price": 2.25,
                "discount_rate": 0.9, "currency": "USD",
            }})),
        ),
        post(
            "/api/v3/model/price",
            None,
            Respond::json(json!({"code": 200, "message": "success", "data": {
                "model_id": "wavespeed-ai/z-image-lora-trainer", "price": 1.25,
            }})),
        ),
    ])
    .await;
    let mut req = flux(MediaInput::Url(DATASET_URL.into()));
    req.options.insert("steps".into(), json!(2000));
    req.options.insert("lora_rank".into(), json!(32));
    let cost = client.quote_training(&req).await.unwrap().unwrap();
    assert_eq!(cost.to_string(), "2.25");
    // The bill the admission reserves is the same steps.
    assert_eq!(client.training_billing(&req), per_step_billing(2000));
    // Bytes are not uploaded for a quote: `data` is left out, the default steps are set.
    let req = TrainingRequest::new(
        "z-image",
        MediaInput::bytes(ZIP.to_vec(), "application/zip"),
    );
    let cost = client.quote_training(&req).await.unwrap().unwrap();
    assert_eq!(cost.to_string(), "1.25");
    let bodies: Vec<Value> = mock.received().iter().map(|r| r.json().unwrap()).collect();
    assert_eq!(
        bodies,
        [
            json!({"model_id": TRAINER, "inputs": {
                "data": DATASET_URL, "trigger_word": "p3r5on", "steps": 2000, "lora_rank": 32,
            }}),
            json!({"model_id": "wavespeed-ai/z-image-lora-trainer", "inputs": {"steps": 1000}}),
        ]
    );
    assert_clean(&mock);
}

#[tokio::test]
async fn a_failed_quote_is_an_error_and_a_bad_run_is_never_quoted() {
    let (mock, client) = serve(vec![
        post("/api/v3/model/price", None, recorded("errors/503.json")),
        post(
            "/api/v3/model/price",
            None,
            Respond::json(
                json!({"code": 200, "message": "success", "data": {"model_id": TRAINER}}),
            ),
        ),
    ])
    .await;
    let req = flux(MediaInput::Url(DATASET_URL.into()));
    let e = client.quote_training(&req).await.unwrap_err();
    assert_eq!(e.kind(), &ErrorKind::Upstream { status: 503 }, "{e:?}");
    assert!(e.is_retryable() && !e.is_in_doubt());
    assert_eq!(e.provider(), "wavespeed");
    let e = client.quote_training(&req).await.unwrap_err();
    assert_eq!(e.kind(), &ErrorKind::Decode, "{e:?}");
    let mut bad = req.clone();
    bad.options.insert("steps".into(), json!(100_000));
    let e = client.quote_training(&bad).await.unwrap_err();
    assert_eq!(e.param(), Some("provider_options.steps"));
    assert_eq!(mock.received().len(), 2, "the bad run made no call");
    assert_clean(&mock);
}

#[tokio::test]
async fn bytes_are_uploaded_then_the_run_is_submitted_once() {
    let (mock, client) = serve(vec![
        upload(uploaded()),
        submit(TRAINER, None, recorded("submit/created.json")),
    ])
    .await;
    let req = flux(MediaInput::bytes(ZIP.to_vec(), "application/zip"));
    let job = client.submit_training(req).await.unwrap();
    // The task id, and the steps for the bill wherever the run ends.
    assert_eq!(job, JobId(format!("{JOB}:1000")));
    let received = mock.received();
    assert_eq!(received.len(), 2);
    let upload_body = String::from_utf8_lossy(&received[0].body);
    assert!(
        upload_body.contains("name=\"file\"; filename=\"dataset.zip\""),
        "{upload_body}"
    );
    assert_eq!(
        received[1].json().unwrap(),
        json!({"data": UPLOADED_URL, "trigger_word": "p3r5on", "steps": 1000})
    );
    assert_clean(&mock);
}

#[tokio::test]
async fn a_url_is_passed_on_without_an_upload() {
    let (mock, client) = serve(vec![submit(
        "wavespeed-ai/qwen-image-lora-trainer",
        None,
        recorded("submit/created.json"),
    )])
    .await;
    let mut req = TrainingRequest::new("qwen-image", MediaInput::Url(DATASET_URL.into()));
    req.options.insert("steps".into(), json!(3000));
    req.options.insert("learning_rate".into(), json!(0.0004));
    let job = client.submit_training(req).await.unwrap();
    assert_eq!(job, JobId(format!("{JOB}:3000")));
    let received = mock.received();
    assert_eq!(received.len(), 1, "no upload");
    assert_eq!(
        received[0].json().unwrap(),
        json!({"data": DATASET_URL, "steps": 3000, "learning_rate": 0.0004})
    );
    assert_clean(&mock);
}

#[tokio::test]
async fn a_run_is_polled_to_the_url_of_its_weights() {
    let (mock, client) = serve(vec![
        poll(recorded("submit/created.json")),
        poll(recorded("result/processing.json")),
        poll(completed_with(json!([WEIGHTS_URL]))),
    ])
    .await;
    let job = JobId(format!("{JOB}:2000"));
    assert_eq!(client.poll_training(&job).await.unwrap().as_str(), "queued");
    assert_eq!(
        client.poll_training(&job).await.unwrap().as_str(),
        "in_progress"
    );
    match client.poll_training(&job).await.unwrap() {
        JobStatus::Completed(out) => {
            assert_eq!(out.weights_url, WEIGHTS_URL);
            assert_eq!(out.billing, per_step_billing(2000));
            assert_eq!(out.billing.charges[0].unit, PriceUnit::TrainingStep);
        }
        other => panic!("{other:?}"),
    }
    assert_clean(&mock);
}

#[tokio::test]
async fn a_failed_run_is_failed_with_the_providers_error() {
    let (mock, client) = serve(vec![
        poll(recorded("result/failed.json")),
        poll(completed_with(json!([]))),
    ])
    .await;
    let job = JobId(format!("{JOB}:1000"));
    match client.poll_training(&job).await.unwrap() {
        JobStatus::Failed(e) => {
            assert!(e.message().contains("Model error"), "{e}");
            assert_eq!(e.provider(), "wavespeed");
            assert!(!e.is_in_doubt());
        }
        other => panic!("{other:?}"),
    }
    // Completed without weights: the run cannot be delivered.
    match client.poll_training(&job).await.unwrap() {
        JobStatus::Failed(e) => assert_eq!(e.kind(), &ErrorKind::Decode, "{e:?}"),
        other => panic!("{other:?}"),
    }
    assert_clean(&mock);
}

#[tokio::test]
async fn a_failed_upload_creates_nothing_and_is_not_in_doubt() {
    let (mock, client) = serve(vec![upload(recorded("errors/500.json"))]).await;
    let req = flux(MediaInput::bytes(ZIP.to_vec(), "application/zip"));
    let e = client.submit_training(req).await.unwrap_err();
    assert_eq!(e.kind(), &ErrorKind::Upstream { status: 500 }, "{e:?}");
    assert!(!e.is_in_doubt() && e.is_retryable(), "{e:?}");
    assert_eq!(e.provider(), "wavespeed");
    assert_eq!(mock.received().len(), 1, "no submit after a failed upload");
    assert_clean(&mock);

    // An upload whose connection breaks has created no task either.
    let (mock, client) = serve(vec![upload(Respond::reset())]).await;
    let req = flux(MediaInput::bytes(ZIP.to_vec(), "application/zip"));
    let e = client.submit_training(req).await.unwrap_err();
    assert!(!e.is_in_doubt(), "{e:?}");
    assert_eq!(mock.received().len(), 1);
}

#[tokio::test]
async fn a_submit_lost_after_the_upload_is_in_doubt() {
    let (mock, client) = serve(vec![
        upload(uploaded()),
        submit(TRAINER, None, Respond::reset()),
    ])
    .await;
    let req = flux(MediaInput::bytes(ZIP.to_vec(), "application/zip"));
    let e = client.submit_training(req).await.unwrap_err();
    assert!(e.is_in_doubt() && !e.is_retryable(), "{e:?}");
    assert_eq!(mock.received().len(), 2, "exactly one submission");
}

#[tokio::test]
async fn a_lora_image_request_sends_its_loras_and_a_bad_scale_sends_nothing() {
    let loras = json!([{"path": WEIGHTS_URL, "scale": 1.0}]);
    let (mock, client) = serve(vec![
        submit(
            "wavespeed-ai/flux-dev-lora",
            None,
            recorded("submit/created.json"),
        ),
        poll(recorded("result/completed.json")),
    ])
    .await;
    let mut req = ImageRequest::new("wavespeed-ai/flux-dev-lora", "p3r5on riding a bike");
    req.options.insert("loras".into(), loras.clone());
    let answer = client.generate_image(req.clone()).await.unwrap();
    assert!(matches!(&answer.images[..], [MediaOutput::Url { .. }]));
    assert_eq!(
        mock.received()[0].json().unwrap(),
        json!({"prompt": "p3r5on riding a bike", "loras": loras})
    );
    // A scale out of 0..4 is refused, naming the entry, before any call.
    req.options.insert(
        "loras".into(),
        json!([{"path": WEIGHTS_URL, "scale": 1.0}, {"path": "owner/style", "scale": 5}]),
    );
    let e = client.generate_image(req).await.unwrap_err();
    assert_eq!(
        (e.kind(), e.param()),
        (&ErrorKind::InvalidRequest, Some("options.loras[1].scale"))
    );
    assert_eq!(mock.received().len(), 2, "no call for the refused request");
    assert_clean(&mock);
}

#[tokio::test]
async fn an_unknown_family_is_refused_before_any_call() {
    let (mock, client) = serve(vec![]).await;
    let req = TrainingRequest::new("sdxl", MediaInput::Url(DATASET_URL.into()));
    let e = client.submit_training(req).await.unwrap_err();
    assert_eq!(
        (e.kind(), e.param()),
        (&ErrorKind::InvalidRequest, Some("model"))
    );
    assert!(e.message().contains("flux-dev"), "{e}");
    assert!(mock.received().is_empty());
    assert_eq!(
        client.lora_model("z-image").map(|l| (l.model, l.max_loras)),
        Some(("wavespeed-ai/z-image/turbo-lora".to_owned(), 3))
    );
    assert_eq!(client.lora_model("sdxl"), None);
}
