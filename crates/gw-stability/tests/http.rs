//! The public API of `gw-stability` against a mock Stability AI (`gw_mock::MockUpstream`).

use std::collections::BTreeMap;
use std::time::Duration;

use gateway_core::{
    Charge, ErrorKind, ImageFormat, ImageModel, ImageRequest, MediaOutput, PriceUnit,
    ProviderConfig, Registry, Service, decode_base64,
};
use gw_mock::MockUpstream;
use gw_mock::fixture::{Respond, UpstreamExpect, UpstreamStep};
use gw_stability::{PROVIDER, StabilityClient};
use serde_json::{Value, json};

const KEY: &str = "sk-test-key-0123456789";

/// A 1x1 PNG, as the recorded answers carry it.
const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";

fn step(path: &str, multipart: Option<Value>, respond: Respond) -> UpstreamStep {
    UpstreamStep {
        expect: UpstreamExpect {
            method: Some("POST".into()),
            path: Some(format!("/v2beta/stable-image/generate/{path}")),
            headers: BTreeMap::from([
                ("authorization".to_owned(), json!(format!("Bearer {KEY}"))),
                ("accept".to_owned(), json!("application/json")),
            ]),
            multipart: multipart.map(|m| serde_json::from_value(m).unwrap()),
            ..UpstreamExpect::default()
        },
        respond,
    }
}

fn recorded(name: &str) -> Respond {
    Respond::recorded(env!("CARGO_MANIFEST_DIR"), name)
}

async fn mock(steps: Vec<UpstreamStep>) -> (MockUpstream, StabilityClient) {
    let mock = MockUpstream::start(steps).await.unwrap();
    let client = StabilityClient::builder()
        .api_key(KEY)
        .base_url(mock.url())
        .build()
        .unwrap();
    (mock, client)
}

/// Every step played as expected, every request was a multipart form, and the key went only in
/// the header.
fn assert_clean(mock: &MockUpstream) {
    assert_eq!(mock.verify(), Vec::<String>::new());
    for got in mock.received() {
        assert!(
            got.header("content-type")
                .is_some_and(|ct| ct.starts_with("multipart/form-data; boundary=")),
            "{:?}",
            got.header("content-type")
        );
        let query = format!("{:?}", got.query);
        assert!(
            !got.path.contains(KEY) && !query.contains(KEY),
            "key in the URL"
        );
        assert!(
            !String::from_utf8_lossy(&got.body).contains(KEY),
            "key in the body"
        );
    }
}

/// The names of the form fields of the `i`th request, in order.
fn form_fields(mock: &MockUpstream, i: usize) -> Vec<String> {
    let body = String::from_utf8_lossy(&mock.received()[i].body).into_owned();
    body.split("Content-Disposition: form-data; name=\"")
        .skip(1)
        .map(|part| part.split('"').next().unwrap().to_owned())
        .collect()
}

fn png_bytes() -> Vec<u8> {
    decode_base64(PNG).unwrap()
}

#[tokio::test]
async fn sd3_sends_every_field_as_a_form_and_reads_the_json_answer() {
    let (mock, client) = mock(vec![step(
        "sd3",
        Some(json!({
            "prompt": "A lighthouse at dusk",
            "model": "sd3.5-large",
            "aspect_ratio": "16:9",
            "negative_prompt": "people",
            "seed": "42",
            "output_format": "jpeg",
            "style_preset": "analog-film",
            "cfg_scale": "4.5"
        })),
        recorded("image/json_jpeg.json"),
    )])
    .await;
    let mut req = ImageRequest::new("sd3.5-large", "A lighthouse at dusk");
    req.size = Some("1920x1080".into());
    req.negative_prompt = Some("people".into());
    req.seed = Some(42);
    req.output_format = Some("jpeg".into());
    req.options
        .insert("style_preset".into(), json!("analog-film"));
    req.options.insert("cfg_scale".into(), json!(4.5));
    let answer = client.generate_image(req).await.unwrap();

    assert_eq!(
        form_fields(&mock, 0),
        [
            "prompt",
            "model",
            "aspect_ratio",
            "negative_prompt",
            "seed",
            "output_format",
            "cfg_scale",
            "style_preset"
        ]
    );
    assert_eq!(answer.model, "sd3.5-large");
    match &answer.images[..] {
        [MediaOutput::Bytes { data, mime }] => {
            assert_eq!(mime, "image/jpeg");
            assert!(data.starts_with(&[0xff, 0xd8, 0xff]));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(answer.notes[0].seed, Some(42));
    assert!(!answer.notes[0].content_filtered);
    assert_eq!(answer.billing.units, 1);
    assert_eq!(answer.billing.charges, [Charge::new(PriceUnit::Image, 1)]);
    assert_clean(&mock);
}

#[tokio::test]
async fn core_and_ultra_send_no_model_field() {
    let (mock, client) = mock(vec![
        step("core", None, recorded("image/json.json")),
        step("ultra", None, recorded("image/json.json")),
    ])
    .await;
    for model in ["core", "ultra"] {
        let answer = client
            .generate_image(ImageRequest::new(model, "A red fox"))
            .await
            .unwrap();
        assert_eq!(answer.notes[0].seed, Some(343940597), "{model}");
    }
    assert_eq!(form_fields(&mock, 0), ["prompt"]);
    assert_eq!(form_fields(&mock, 1), ["prompt"]);
    assert_clean(&mock);
}

#[tokio::test]
async fn raw_image_bytes_with_their_headers_are_read_too() {
    let filtered_bytes = Respond {
        base64: Some(PNG.into()),
        ..Respond::default()
    }
    .header("content-type", "image/png")
    .header("finish-reason", "CONTENT_FILTERED")
    .header("seed", "7");
    let (mock, client) = mock(vec![
        step("core", None, recorded("image/bytes.json")),
        step("core", None, filtered_bytes),
    ])
    .await;
    let answer = client
        .generate_image(ImageRequest::new("core", "A red fox"))
        .await
        .unwrap();
    assert_eq!(
        answer.images,
        [MediaOutput::Bytes {
            data: png_bytes().into(),
            mime: "image/png".into()
        }]
    );
    assert_eq!(answer.notes[0].seed, Some(343940597));
    assert!(!answer.notes[0].content_filtered);

    let filtered = client
        .generate_image(ImageRequest::new("core", "A red fox"))
        .await
        .unwrap();
    assert!(filtered.notes[0].content_filtered);
    assert_eq!(filtered.notes[0].seed, Some(7));
    assert_clean(&mock);
}

#[tokio::test]
async fn a_filtered_image_comes_back_flagged_and_billed() {
    let (mock, client) = mock(vec![step("ultra", None, recorded("image/filtered.json"))]).await;
    let answer = client
        .generate_image(ImageRequest::new("ultra", "A red fox"))
        .await
        .unwrap();
    assert_eq!(answer.images.len(), 1);
    assert!(answer.notes[0].content_filtered);
    assert_eq!(answer.notes[0].seed, Some(1029384756));
    assert_eq!(answer.billing.units, 1);
    assert_eq!(answer.billing.charges, [Charge::new(PriceUnit::Image, 1)]);
    assert_clean(&mock);
}

#[tokio::test]
async fn a_moderation_refusal_is_content_filtered() {
    let (mock, client) = mock(vec![step("sd3", None, recorded("errors/403.json"))]).await;
    let err = client
        .generate_image(ImageRequest::new("sd3.5-medium", "something flagged"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::ContentFiltered);
    assert_eq!(err.status(), Some(403));
    assert_eq!(err.provider(), PROVIDER);
    assert!(
        err.message()
            .starts_with("Your request was flagged by our content moderation system"),
        "{err}"
    );
    assert!(!err.is_retryable());
    assert!(err.body().unwrap().contains("content_moderation"));
    assert_clean(&mock);
}

#[tokio::test]
async fn error_answers_are_classified() {
    let (mock, client) = mock(vec![
        step("core", None, recorded("errors/401.json")),
        step("core", None, recorded("errors/402.json")),
        step("core", None, recorded("errors/400.json")),
        step("core", None, recorded("errors/413.json")),
        step("core", None, recorded("errors/422.json")),
        step(
            "core",
            None,
            recorded("errors/429.json").header("retry-after", "3"),
        ),
        step("core", None, recorded("errors/500.json")),
    ])
    .await;
    let req = || ImageRequest::new("core", "A red fox");

    let auth = client.generate_image(req()).await.unwrap_err();
    assert_eq!(auth.kind(), &ErrorKind::Auth);
    assert_eq!(auth.status(), Some(401));
    assert!(!format!("{auth:?}").contains(KEY));

    let quota = client.generate_image(req()).await.unwrap_err();
    assert_eq!(quota.kind(), &ErrorKind::QuotaExceeded);
    assert!(!quota.is_retryable());
    assert!(!quota.message().contains("purchase"), "{quota}");
    assert!(quota.body().unwrap().contains("payment_required"));

    for status in [400, 413, 422] {
        let invalid = client.generate_image(req()).await.unwrap_err();
        assert_eq!(invalid.kind(), &ErrorKind::InvalidRequest, "{status}");
        assert_eq!(invalid.status(), Some(status));
        assert!(!invalid.message().is_empty());
    }

    let rate = client.generate_image(req()).await.unwrap_err();
    assert_eq!(
        rate.kind(),
        &ErrorKind::RateLimited {
            retry_after: Some(Duration::from_secs(3))
        }
    );

    let upstream = client.generate_image(req()).await.unwrap_err();
    assert_eq!(upstream.kind(), &ErrorKind::Upstream { status: 500 });
    assert!(upstream.is_retryable());
    assert_clean(&mock);
}

#[tokio::test]
async fn what_stability_cannot_do_is_refused_before_any_call() {
    let (mock, client) = mock(vec![]).await;
    let mut url = ImageRequest::new("core", "x");
    url.response_format = Some(ImageFormat::Url);
    let mut wide = ImageRequest::new("core", "x");
    wide.size = Some("1792x1024".into());
    let mut two = ImageRequest::new("ultra", "x");
    two.n = Some(2);
    let mut turbo = ImageRequest::new("sd3.5-large-turbo", "x");
    turbo.negative_prompt = Some("blur".into());
    let mut webp = ImageRequest::new("sd3.5-large", "x");
    webp.output_format = Some("webp".into());
    let mut unknown = ImageRequest::new("core", "x");
    unknown.options.insert("steps".into(), json!(30));
    for (req, kind, param) in [
        (url, ErrorKind::InvalidRequest, "response_format"),
        (wide, ErrorKind::Unsupported, "size"),
        (two, ErrorKind::Unsupported, "n"),
        (turbo, ErrorKind::Unsupported, "negative_prompt"),
        (webp, ErrorKind::Unsupported, "output_format"),
        (unknown, ErrorKind::InvalidRequest, "options.steps"),
        (ImageRequest::new("sd2", "x"), ErrorKind::NotFound, "model"),
    ] {
        assert_eq!(client.check_generation(&req).unwrap_err().kind(), &kind);
        let err = client.generate_image(req).await.unwrap_err();
        assert_eq!(err.kind(), &kind);
        assert_eq!(err.param(), Some(param));
        assert_eq!(err.provider(), PROVIDER);
    }
    assert!(mock.received().is_empty(), "no call was made");
    let caps = client.image_capabilities();
    assert!(caps.generation && !caps.editing && !caps.url_output);
    assert_eq!(caps.max_n, 1);
}

#[tokio::test]
async fn an_answer_that_is_not_stabilitys_is_a_decode_error() {
    let (mock, client) = mock(vec![
        step("core", None, Respond::json(json!({"artifacts": []}))),
        step(
            "core",
            None,
            Respond::json(json!({"image": "not base64!", "finish_reason": "SUCCESS"})),
        ),
        step(
            "core",
            None,
            Respond::text("<html>hello</html>").header("content-type", "image/png"),
        ),
    ])
    .await;
    for _ in 0..3 {
        let err = client
            .generate_image(ImageRequest::new("core", "x"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::Decode, "{err}");
        assert_eq!(err.provider(), PROVIDER);
    }
    assert_clean(&mock);
}

#[tokio::test]
async fn register_adds_the_provider_its_models_and_prices() {
    let mock = MockUpstream::start(vec![step("sd3", None, recorded("image/json.json"))])
        .await
        .unwrap();
    let cfg = ProviderConfig {
        api_key: Some(KEY.into()),
        base_url: Some(format!("{}/", mock.url())),
        models: vec!["core".into(), "sd3.5-large".into()],
        ..ProviderConfig::default()
    };
    let mut reg = Registry::new();
    gw_stability::register(&mut reg, &cfg).unwrap();
    assert_eq!(reg.providers(), vec![PROVIDER]);
    assert_eq!(reg.services_of(PROVIDER), vec![Service::Images]);
    assert_eq!(
        reg.model_names(),
        vec![
            "stability/core".to_owned(),
            "stability/sd3.5-large".to_owned()
        ]
    );
    let price = |model: &str| {
        reg.prices()
            .charges_cost(PROVIDER, model, &[Charge::new(PriceUnit::Image, 1)])
            .map(|c| c.to_string())
    };
    assert_eq!(price("sd3.5-large").as_deref(), Some("0.065"));
    assert_eq!(price("core").as_deref(), Some("0.03"));
    let provider = reg.image(PROVIDER).unwrap();
    let answer = provider
        .generate_image_dyn(ImageRequest::new("sd3.5-large", "A red fox"))
        .await
        .unwrap();
    assert_eq!(answer.images.len(), 1);
    assert_clean(&mock);
}

#[test]
fn register_needs_a_key_and_knows_its_fields() {
    let no_key = ProviderConfig {
        api_key_env: Some("GW_STABILITY_TEST_SURELY_UNSET".into()),
        ..ProviderConfig::default()
    };
    let err = gw_stability::register(&mut Registry::new(), &no_key).unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Unavailable);

    let mut extra = ProviderConfig {
        api_key: Some(KEY.into()),
        ..ProviderConfig::default()
    };
    extra.extra.insert("engine".into(), "sd3".into());
    let err = gw_stability::register(&mut Registry::new(), &extra).unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Config);
    assert!(err.to_string().contains("providers.stability"), "{err}");
}
