//! The public API of `gw-wavespeed` against a mock WaveSpeed (`gw_mock::MockUpstream`): tasks
//! submitted once and polled to the end, and what each failure means for a retry.

use std::collections::BTreeMap;
use std::time::Duration;

use gateway_core::http::DownloadSettings;
use gateway_core::{
    EditKind, ErrorKind, ImageEditRequest, ImageFormat, ImageModel, ImageRequest, JobId,
    MediaInput, MediaOutput, PollPolicy,
};
use gw_mock::MockUpstream;
use gw_mock::fixture::{Respond, UpstreamExpect, UpstreamStep};
use gw_wavespeed::WaveSpeedClient;
use serde_json::{Value, json};

const KEY: &str = "wavespeed-test-key-0123456789";
const JOB: &str = "6488c2754f6f4dfea924382fa14d11bd";
const PNG_1X1: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";

fn recorded(name: &str) -> Respond {
    Respond::recorded(env!("CARGO_MANIFEST_DIR"), name)
}

fn submit(model: &str, json: Option<Value>, respond: Respond) -> UpstreamStep {
    UpstreamStep {
        expect: UpstreamExpect {
            method: Some("POST".into()),
            path: Some(format!("/api/v3/{model}")),
            headers: BTreeMap::from([
                ("authorization".to_owned(), json!(format!("Bearer {KEY}"))),
                ("content-type".to_owned(), json!("application/json")),
            ]),
            json,
            ..UpstreamExpect::default()
        },
        respond,
    }
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

fn fast(deadline: Duration) -> PollPolicy {
    PollPolicy {
        first_interval: Duration::ZERO,
        max_interval: Duration::from_millis(1),
        deadline,
    }
}

async fn serve(steps: Vec<UpstreamStep>) -> (MockUpstream, WaveSpeedClient) {
    let mock = MockUpstream::start(steps).await.unwrap();
    let client = WaveSpeedClient::builder()
        .api_key(KEY)
        .base_url(mock.url())
        .poll_policy(fast(Duration::from_secs(60)))
        .downloads(DownloadSettings {
            allow_private: Some(true),
            ..DownloadSettings::default()
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

fn flux(prompt: &str) -> ImageRequest {
    ImageRequest::new("wavespeed-ai/flux-dev", prompt)
}

#[tokio::test]
async fn a_task_is_polled_through_its_states_on_the_base_url() {
    // The recorded answers name `https://api.wavespeed.ai/.../result` in `urls.get`: the polls
    // must still go to the configured base URL (the mock), or they would leave the test.
    let (mock, client) = serve(vec![
        submit(
            "wavespeed-ai/flux-dev",
            Some(json!({"prompt": "A lighthouse at dusk", "size": "1024*768", "num_images": 1})),
            recorded("submit/created.json"),
        ),
        poll(recorded("submit/created.json")),
        poll(recorded("result/processing.json")),
        poll(recorded("result/completed.json")),
    ])
    .await;
    let mut req = flux("A lighthouse at dusk");
    req.size = Some("1024x768".into());
    req.n = Some(1);
    let answer = client.generate_image(req).await.unwrap();
    assert_eq!(
        answer.images,
        [MediaOutput::Url {
            url: format!("https://d1q70pf5vjeyhc.cloudfront.net/predictions/{JOB}/0.jpeg"),
            mime: None
        }]
    );
    assert_eq!(answer.model, "wavespeed-ai/flux-dev");
    assert_eq!(answer.billing.units, 1);
    assert_eq!(answer.notes.len(), 1);
    assert!(!answer.notes[0].content_filtered);
    assert_eq!(mock.received().len(), 4);
    assert_clean(&mock);
}

#[tokio::test]
async fn base64_outputs_come_back_as_bytes() {
    let (mock, client) = serve(vec![
        submit(
            "wavespeed-ai/flux-dev",
            Some(json!({"enable_base64_output": true})),
            recorded("submit/created.json"),
        ),
        poll(recorded("result/completed_base64.json")),
    ])
    .await;
    let mut req = flux("A red square");
    req.response_format = Some(ImageFormat::B64Json);
    let answer = client.generate_image(req).await.unwrap();
    match &answer.images[..] {
        [MediaOutput::Bytes { data, mime }] => {
            assert_eq!(mime, "image/png");
            assert_eq!(gateway_core::encode_base64(data), PNG_1X1);
        }
        other => panic!("{other:?}"),
    }
    assert_clean(&mock);
}

#[tokio::test]
async fn urls_are_downloaded_when_bytes_were_asked_and_the_model_has_no_base64() {
    let png = gateway_core::decode_base64(PNG_1X1).unwrap();
    let cdn = MockUpstream::start(vec![UpstreamStep {
        expect: UpstreamExpect {
            method: Some("GET".into()),
            path: Some("/predictions/0.png".into()),
            ..UpstreamExpect::default()
        },
        respond: Respond {
            base64: Some(PNG_1X1.into()),
            headers: BTreeMap::from([("content-type".into(), "image/png".into())]),
            ..Respond::default()
        },
    }])
    .await
    .unwrap();
    let mut completed = recorded("result/completed.json");
    completed.json.as_mut().unwrap()["data"]["outputs"] =
        json!([format!("{}/predictions/0.png", cdn.url())]);
    let (mock, client) = serve(vec![
        submit(
            "bytedance/seedream-v4.5",
            None,
            recorded("submit/created.json"),
        ),
        poll(completed),
    ])
    .await;
    let mut req = ImageRequest::new("bytedance/seedream-v4.5", "A poster");
    req.response_format = Some(ImageFormat::B64Json);
    let answer = client.generate_image(req).await.unwrap();
    match &answer.images[..] {
        [MediaOutput::Bytes { data, mime }] => {
            assert_eq!(mime, "image/png");
            assert_eq!(&data[..], &png[..]);
        }
        other => panic!("{other:?}"),
    }
    let body = mock.received()[0].json().unwrap();
    assert!(body.get("enable_base64_output").is_none(), "{body}");
    assert_clean(&mock);
    assert_eq!(cdn.verify(), Vec::<String>::new());
    // No key goes to the CDN.
    assert_eq!(cdn.received()[0].header("authorization"), None);
}

#[tokio::test]
async fn a_failed_task_is_an_error_by_its_message_and_not_in_doubt() {
    let (mock, client) = serve(vec![
        submit(
            "wavespeed-ai/flux-dev",
            None,
            recorded("submit/created.json"),
        ),
        poll(recorded("result/processing.json")),
        poll(recorded("result/failed_nsfw.json")),
    ])
    .await;
    let e = client.generate_image(flux("something")).await.unwrap_err();
    assert_eq!(e.kind(), &ErrorKind::ContentFiltered, "{e}");
    assert!(e.message().contains(JOB), "{e}");
    assert!(!e.is_in_doubt() && !e.is_retryable());
    assert_eq!(e.provider(), "wavespeed");
    assert_clean(&mock);

    let (mock, client) = serve(vec![
        submit(
            "wavespeed-ai/flux-dev",
            None,
            recorded("submit/created.json"),
        ),
        poll(recorded("result/failed.json")),
    ])
    .await;
    let e = client.generate_image(flux("something")).await.unwrap_err();
    assert_eq!(e.kind(), &ErrorKind::Upstream { status: 502 }, "{e}");
    assert!(e.message().contains("Model error"), "{e}");
    // The task ended: a new one may be tried (the router decides); nothing runs any more.
    assert!(!e.is_in_doubt() && e.is_retryable());
    assert_clean(&mock);
}

#[tokio::test]
async fn a_submit_whose_connection_breaks_is_sent_once_and_in_doubt() {
    let (mock, client) = serve(vec![submit(
        "wavespeed-ai/flux-dev",
        None,
        Respond::reset(),
    )])
    .await;
    let e = client.generate_image(flux("A cat")).await.unwrap_err();
    assert!(e.is_in_doubt(), "{e:?}");
    assert!(!e.is_retryable(), "{e:?}");
    assert_eq!(e.provider(), "wavespeed");
    assert_eq!(mock.received().len(), 1, "exactly one submission");
    assert_clean(&mock);
}

#[tokio::test]
async fn a_submit_that_never_connects_is_an_ordinary_retryable_error() {
    // A port that was just free: nothing listens, the connection is refused, no task exists.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = WaveSpeedClient::builder()
        .api_key(KEY)
        .base_url(format!("http://127.0.0.1:{port}"))
        .build()
        .unwrap();
    let e = client.generate_image(flux("A cat")).await.unwrap_err();
    assert_eq!(e.kind(), &ErrorKind::Connect, "{e:?}");
    assert!(!e.is_in_doubt() && e.is_retryable(), "{e:?}");
}

#[tokio::test]
async fn a_submit_answered_429_or_5xx_may_be_sent_again() {
    // The provider never retries: the router does, on a retryable error that is not in doubt.
    let (mock, client) = serve(vec![
        submit("wavespeed-ai/flux-dev", None, recorded("errors/429.json")),
        submit(
            "wavespeed-ai/flux-dev",
            None,
            recorded("submit/created.json"),
        ),
        poll(recorded("result/completed.json")),
    ])
    .await;
    let e = client.generate_image(flux("A cat")).await.unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::RateLimited { retry_after: Some(d) } if d.is_zero()),
        "{e:?}"
    );
    assert!(e.is_retryable() && !e.is_in_doubt());
    assert_eq!(mock.received().len(), 1);
    let answer = client.generate_image(flux("A cat")).await.unwrap();
    assert_eq!(answer.images.len(), 1);
    assert_clean(&mock);

    let (mock, client) = serve(vec![submit(
        "wavespeed-ai/flux-dev",
        None,
        recorded("errors/503.json"),
    )])
    .await;
    let e = client.generate_image(flux("A cat")).await.unwrap_err();
    assert_eq!(e.kind(), &ErrorKind::Upstream { status: 503 });
    assert!(e.is_retryable() && !e.is_in_doubt());
    assert_clean(&mock);
}

#[tokio::test]
async fn a_poll_that_fails_on_the_way_is_polled_again() {
    let (mock, client) = serve(vec![
        submit(
            "wavespeed-ai/flux-dev",
            None,
            recorded("submit/created.json"),
        ),
        poll(recorded("errors/503.json")),
        poll(recorded("errors/500.json")),
        poll(Respond::reset()),
        poll(recorded("result/completed.json")),
    ])
    .await;
    let answer = client.generate_image(flux("A cat")).await.unwrap();
    assert_eq!(answer.images.len(), 1);
    assert_eq!(mock.received().len(), 5);
    assert_clean(&mock);
}

#[tokio::test]
async fn a_task_refused_on_poll_after_it_was_created_is_in_doubt() {
    let (mock, client) = serve(vec![
        submit(
            "wavespeed-ai/flux-dev",
            None,
            recorded("submit/created.json"),
        ),
        poll(recorded("errors/401.json")),
    ])
    .await;
    let e = client.generate_image(flux("A cat")).await.unwrap_err();
    assert_eq!(e.kind(), &ErrorKind::Auth);
    assert!(e.is_in_doubt(), "the task exists and may run: {e:?}");
    assert_clean(&mock);
}

#[tokio::test]
async fn a_task_that_outlives_the_deadline_is_a_timeout_naming_it() {
    // Every poll says "processing" (the mock answers any poll past its steps with a 500, which is
    // polled again too) until the deadline.
    let mock = MockUpstream::start(vec![
        submit(
            "wavespeed-ai/flux-dev",
            None,
            recorded("submit/created.json"),
        ),
        poll(recorded("result/processing.json")),
        poll(recorded("result/processing.json")),
    ])
    .await
    .unwrap();
    let client = WaveSpeedClient::builder()
        .api_key(KEY)
        .base_url(mock.url())
        .poll_policy(PollPolicy {
            first_interval: Duration::ZERO,
            max_interval: Duration::from_millis(5),
            deadline: Duration::from_millis(40),
        })
        .build()
        .unwrap();
    let e = client.generate_image(flux("A cat")).await.unwrap_err();
    assert_eq!(e.kind(), &ErrorKind::Timeout, "{e:?}");
    assert!(e.message().contains(JOB), "{e}");
    assert_eq!(e.provider(), "wavespeed");
    // The task still runs at WaveSpeed: another submission would run (and bill) it twice.
    assert!(e.is_in_doubt() && !e.is_retryable());
    let submits = mock
        .received()
        .iter()
        .filter(|r| r.method == "POST")
        .count();
    assert_eq!(submits, 1);
}

#[tokio::test]
async fn errors_on_submit_are_classified_and_envelope_codes_checked_on_200() {
    let (mock, client) = serve(vec![
        submit("wavespeed-ai/flux-dev", None, recorded("errors/401.json")),
        submit(
            "wavespeed-ai/no-such-model",
            None,
            recorded("errors/404.json"),
        ),
        submit(
            "wavespeed-ai/flux-dev",
            None,
            Respond::json(json!({"code": 400, "message": "prompt is required", "data": null})),
        ),
        submit(
            "wavespeed-ai/flux-dev",
            None,
            Respond::json(json!({"code": 402, "message": "Insufficient balance", "data": null})),
        ),
    ])
    .await;
    let e = client.generate_image(flux("x")).await.unwrap_err();
    assert_eq!(e.kind(), &ErrorKind::Auth);
    assert_eq!((e.status(), e.is_in_doubt()), (Some(401), false));
    let e = client
        .generate_image(ImageRequest::new("wavespeed-ai/no-such-model", "x"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), &ErrorKind::NotFound);
    let e = client.generate_image(flux("x")).await.unwrap_err();
    assert_eq!(e.kind(), &ErrorKind::InvalidRequest, "{e:?}");
    assert_eq!(e.message(), "prompt is required");
    let e = client.generate_image(flux("x")).await.unwrap_err();
    assert_eq!(e.kind(), &ErrorKind::QuotaExceeded, "{e:?}");
    assert!(!e.is_in_doubt());
    assert_clean(&mock);
}

#[tokio::test]
async fn sync_mode_takes_the_finished_task_or_polls_one_still_running() {
    let mock = MockUpstream::start(vec![
        submit(
            "wavespeed-ai/flux-dev",
            Some(json!({"enable_sync_mode": true})),
            recorded("result/completed.json"),
        ),
        submit(
            "wavespeed-ai/flux-dev",
            Some(json!({"enable_sync_mode": true})),
            // The official SDK's sync-timeout test body.
            Respond::json(json!({"code": 200, "message": "success", "data": {
                "id": JOB,
                "status": "processing",
                "code": 5004,
                "error": "Sync mode timed out after 90 seconds. The prediction is still processing asynchronously.",
                "urls": {"get": format!("https://api.wavespeed.ai/api/v3/predictions/{JOB}/result")}
            }})),
        ),
        poll(recorded("result/completed.json")),
        // seedream does not document sync mode: the flag stays off.
        submit("bytedance/seedream-v4.5", None, recorded("result/completed.json")),
    ])
    .await
    .unwrap();
    let client = WaveSpeedClient::builder()
        .api_key(KEY)
        .base_url(mock.url())
        .poll_policy(fast(Duration::from_secs(60)))
        .sync_mode(true)
        .build()
        .unwrap();
    assert_eq!(
        client.generate_image(flux("x")).await.unwrap().images.len(),
        1
    );
    assert_eq!(
        client.generate_image(flux("x")).await.unwrap().images.len(),
        1
    );
    let seedream = ImageRequest::new("bytedance/seedream-v4.5", "x");
    assert_eq!(
        client.generate_image(seedream).await.unwrap().images.len(),
        1
    );
    let last = mock.received()[3].json().unwrap();
    assert!(last.get("enable_sync_mode").is_none(), "{last}");
    assert_clean(&mock);
}

#[tokio::test]
async fn edits_send_each_models_fields() {
    let data_url = format!("data:image/png;base64,{PNG_1X1}");
    let png = || MediaInput::bytes(gateway_core::decode_base64(PNG_1X1).unwrap(), "image/png");
    let (mock, client) = serve(vec![
        submit(
            "wavespeed-ai/image-face-swap",
            Some(json!({"image": "https://example.com/target.jpg", "face_image": data_url})),
            recorded("submit/created.json"),
        ),
        poll(recorded("result/completed.json")),
        submit(
            "wavespeed-ai/image-background-remover",
            Some(json!({"image": "https://example.com/product.jpg"})),
            recorded("submit/created.json"),
        ),
        poll(recorded("result/completed.json")),
        submit(
            "wavespeed-ai/image-eraser",
            Some(json!({"image": data_url, "mask_image": data_url, "prompt": "the dog"})),
            recorded("submit/created.json"),
        ),
        poll(recorded("result/completed.json")),
    ])
    .await;
    let swap = ImageEditRequest::new(
        "wavespeed-ai/image-face-swap",
        vec![
            MediaInput::Url("https://example.com/target.jpg".into()),
            png(),
        ],
    );
    client.check_edit(&swap).unwrap();
    client.edit_image(swap).await.unwrap();
    let mut bg = ImageEditRequest::new(
        "wavespeed-ai/image-background-remover",
        vec![MediaInput::Url("https://example.com/product.jpg".into())],
    );
    bg.prompt = "remove the background".into();
    client.edit_image(bg).await.unwrap();
    let mut erase = ImageEditRequest::new("wavespeed-ai/image-eraser", vec![png()]);
    erase.mask = Some(png());
    erase.prompt = "the dog".into();
    let answer = client.edit_image(erase).await.unwrap();
    assert_eq!(answer.billing.units, 1);
    assert_clean(&mock);
    // The background remover got no prompt: it has no such field.
    let bg_body = mock.received()[2].json().unwrap();
    assert_eq!(bg_body, json!({"image": "https://example.com/product.jpg"}));
}

#[tokio::test]
async fn refusals_before_io_make_no_call() {
    let (mock, client) = serve(vec![]).await;
    let erase = ImageEditRequest::new(
        "wavespeed-ai/flux-v1-pro/erase",
        vec![MediaInput::Url("https://example.com/a.png".into())],
    );
    let e = client.edit_image(erase).await.unwrap_err();
    assert_eq!(
        (e.kind(), e.param()),
        (&ErrorKind::InvalidRequest, Some("mask"))
    );
    let swap = ImageEditRequest::new(
        "wavespeed-ai/image-face-swap",
        vec![MediaInput::Url("https://example.com/a.png".into())],
    )
    .kind(EditKind::FaceSwap);
    let e = client.edit_image(swap).await.unwrap_err();
    assert_eq!(e.param(), Some("image"));
    let mut big = flux("x");
    big.size = Some("2048x2048".into());
    assert_eq!(
        client.check_generation(&big).unwrap_err().param(),
        Some("size")
    );
    assert!(mock.received().is_empty());
}

#[tokio::test]
async fn the_job_api_is_usable_on_its_own() {
    let (mock, client) = serve(vec![
        submit(
            "wavespeed-ai/hunyuan-video-1.5/text-to-video",
            Some(json!({"prompt": "waves", "duration": 5})),
            recorded("submit/created.json"),
        ),
        poll(recorded("result/processing.json")),
    ])
    .await;
    let mut input = serde_json::Map::new();
    input.insert("prompt".into(), json!("waves"));
    input.insert("duration".into(), json!(5));
    let task = client
        .submit("wavespeed-ai/hunyuan-video-1.5/text-to-video", &input)
        .await
        .unwrap();
    assert_eq!((task.id.as_str(), task.status.as_str()), (JOB, "created"));
    let status = client.poll(&JobId(task.id)).await.unwrap();
    assert_eq!(status.as_str(), "in_progress");
    assert_clean(&mock);
}

fn hunyuan(prompt: &str) -> gateway_core::VideoRequest {
    gateway_core::VideoRequest::new("wavespeed-ai/hunyuan-video-1.5/text-to-video", prompt)
}

/// The recorded completed task, with `outputs` replaced.
fn completed_with(outputs: Value) -> Respond {
    let mut completed = recorded("result/completed.json");
    completed.json.as_mut().unwrap()["data"]["outputs"] = outputs;
    completed
}

#[tokio::test]
async fn a_video_is_submitted_once_then_polled_one_read_at_a_time() {
    use gateway_core::{JobStatus, VideoModel};
    let video_url = format!("https://d1q70pf5vjeyhc.cloudfront.net/predictions/{JOB}/0.mp4");
    let (mock, client) = serve(vec![
        submit(
            "wavespeed-ai/hunyuan-video-1.5/text-to-video",
            Some(
                json!({"prompt": "A fox in the snow", "duration": 8, "size": "832*480",
                        "seed": 7, "negative_prompt": "blur"}),
            ),
            recorded("submit/created.json"),
        ),
        poll(recorded("submit/created.json")),
        poll(recorded("result/processing.json")),
        poll(completed_with(json!([video_url]))),
    ])
    .await;
    let mut req = hunyuan("A fox in the snow");
    req.duration_secs = Some(8);
    req.resolution = Some("480p".into());
    req.aspect_ratio = Some("16:9".into());
    req.seed = Some(7);
    req.negative_prompt = Some("blur".into());
    let estimate = client.video_billing(&req);
    assert_eq!(estimate.units, 8);
    let job = client.submit_video(req).await.unwrap();
    // The task id, and what was asked of it for the bill wherever the job ends.
    assert_eq!(job, JobId(format!("{JOB}:8:480p")));
    assert_eq!(client.poll_video(&job).await.unwrap().as_str(), "queued");
    assert_eq!(
        client.poll_video(&job).await.unwrap().as_str(),
        "in_progress"
    );
    match client.poll_video(&job).await.unwrap() {
        JobStatus::Completed(out) => {
            assert_eq!(
                out.video,
                MediaOutput::Url {
                    url: video_url,
                    mime: Some("video/mp4".into())
                }
            );
            assert_eq!(out.duration, Some(Duration::from_secs(8)));
            assert_eq!(out.usage.units, 8);
            assert_eq!(out.billing, estimate);
        }
        other => panic!("{other:?}"),
    }
    assert_clean(&mock);
}

#[tokio::test]
async fn a_failed_video_is_an_error_by_its_message() {
    use gateway_core::{JobStatus, VideoModel};
    let (mock, client) = serve(vec![
        submit(
            "lightricks/ltx-2-pro/text-to-video",
            Some(json!({"prompt": "A storm", "duration": 6})),
            recorded("submit/created.json"),
        ),
        poll(recorded("result/failed.json")),
    ])
    .await;
    let req = gateway_core::VideoRequest::new("lightricks/ltx-2-pro/text-to-video", "A storm");
    assert_eq!(client.video_billing(&req).units, 6);
    let job = client.submit_video(req).await.unwrap();
    match client.poll_video(&job).await.unwrap() {
        JobStatus::Failed(e) => {
            assert!(e.message().contains("Model error"), "{e}");
            assert_eq!(e.provider(), "wavespeed");
            assert!(!e.is_in_doubt());
        }
        other => panic!("{other:?}"),
    }
    assert_clean(&mock);
}

#[tokio::test]
async fn image_to_video_sends_bytes_as_a_data_url_and_refusals_send_nothing() {
    use gateway_core::VideoModel;
    let (mock, client) = serve(vec![submit(
        "wavespeed-ai/hunyuan-video-1.5/image-to-video",
        Some(
            json!({"prompt": "The lighthouse beam sweeps", "duration": 5,
                    "resolution": "720p", "image": format!("data:image/png;base64,{PNG_1X1}")}),
        ),
        recorded("submit/created.json"),
    )])
    .await;
    let mut req = gateway_core::VideoRequest::new(
        "wavespeed-ai/hunyuan-video-1.5/image-to-video",
        "The lighthouse beam sweeps",
    );
    // Without its image, image-to-video is refused before any call.
    let e = client.submit_video(req.clone()).await.unwrap_err();
    assert_eq!(
        (e.kind(), e.param()),
        (&ErrorKind::InvalidRequest, Some("image"))
    );
    req.image = Some(MediaInput::bytes(
        gateway_core::decode_base64(PNG_1X1).unwrap(),
        "image/png",
    ));
    let job = client.submit_video(req).await.unwrap();
    assert_eq!(job.0.split(':').next(), Some(JOB));
    assert_clean(&mock);
}

#[tokio::test]
async fn speech_is_run_to_its_end_and_its_audio_downloaded() {
    use gateway_core::{SpeechModel, SpeechRequest};
    let wav = b"RIFF\x24\0\0\0WAVEfmt \x10\0\0\0\x01\0\x01\0\x80\xbb\0\0\0\x77\x01\0\x02\0\x10\0data\0\0\0\0";
    let cdn = MockUpstream::start(vec![UpstreamStep {
        expect: UpstreamExpect {
            method: Some("GET".into()),
            path: Some("/predictions/0.wav".into()),
            ..UpstreamExpect::default()
        },
        respond: Respond {
            base64: Some(gateway_core::encode_base64(wav)),
            headers: BTreeMap::from([("content-type".into(), "application/octet-stream".into())]),
            ..Respond::default()
        },
    }])
    .await
    .unwrap();
    let (mock, client) = serve(vec![
        submit(
            "minimax/speech-02-hd",
            Some(
                json!({"text": "Hello there", "voice_id": "Calm_Woman", "speed": 1.5,
                        "format": "wav", "emotion": "neutral"}),
            ),
            recorded("submit/created.json"),
        ),
        poll(recorded("result/processing.json")),
        poll(completed_with(json!([format!(
            "{}/predictions/0.wav",
            cdn.url()
        )]))),
    ])
    .await;
    let mut req = SpeechRequest::new("minimax/speech-02-hd", "Hello there");
    req.voice = Some("Calm_Woman".into());
    req.speed = Some(1.5);
    req.format = Some("wav".into());
    req.options.insert("emotion".into(), json!("neutral"));
    let answer = client.speak(req).await.unwrap();
    assert_eq!(&answer.audio[..], &wav[..]);
    assert_eq!(answer.mime, "audio/wav");
    assert_eq!(answer.usage.units, 11);
    assert_eq!(answer.billing.units, 11);
    assert_clean(&mock);
    assert_eq!(cdn.verify(), Vec::<String>::new());
    assert_eq!(cdn.received()[0].header("authorization"), None);
}

#[tokio::test]
async fn speech_in_a_format_minimax_lacks_is_refused_before_any_call() {
    use gateway_core::{SpeechModel, SpeechRequest};
    let (mock, client) = serve(vec![]).await;
    let mut req = SpeechRequest::new("minimax/speech-02-turbo", "Hello");
    req.voice = Some("Wise_Woman".into());
    req.format = Some("opus".into());
    let e = client.speak(req).await.unwrap_err();
    assert_eq!(
        (e.kind(), e.param()),
        (&ErrorKind::Unsupported, Some("response_format"))
    );
    assert!(mock.received().is_empty());
}
