//! Text-to-image of `gw-hf` against a mock router and Hub (`gw_mock::MockUpstream`): the Hub's
//! mapping, each backend's wire format, URLs handed out or downloaded.

mod common;

use std::collections::BTreeMap;

use common::TOKEN;
use gateway_core::http::DownloadSettings;
use gateway_core::{
    ErrorKind, ImageFormat, ImageModel, ImageRequest, MediaOutput, ModelEntry, ProviderConfig,
    Registry, Service, ServingModel,
};
use gw_hf::{HfClient, PROVIDER};
use gw_mock::MockUpstream;
use gw_mock::fixture::{Respond, UpstreamExpect, UpstreamStep};
use serde_json::{Value, json};

const FLUX: &str = "black-forest-labs/FLUX.1-dev";
const PNG: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=";

fn expect(method: &str, path: &str, json: Option<Value>) -> UpstreamExpect {
    UpstreamExpect {
        method: Some(method.into()),
        path: Some(path.into()),
        headers: BTreeMap::from([("authorization".to_owned(), json!(format!("Bearer {TOKEN}")))]),
        json,
        ..UpstreamExpect::default()
    }
}

fn mapping_step() -> UpstreamStep {
    let mut e = expect("GET", &format!("/api/models/{FLUX}"), None);
    e.query = BTreeMap::from([("expand[]".to_owned(), json!("inferenceProviderMapping"))]);
    UpstreamStep {
        expect: e,
        respond: Respond::recorded(env!("CARGO_MANIFEST_DIR"), "image/mapping_flux_dev.json"),
    }
}

fn fal_step(json: Value, respond: Respond) -> UpstreamStep {
    UpstreamStep {
        expect: expect("POST", "/fal-ai/fal-ai/flux/dev", Some(json)),
        respond,
    }
}

async fn client(steps: Vec<UpstreamStep>, private_downloads: bool) -> (MockUpstream, HfClient) {
    let mock = MockUpstream::start(steps).await.unwrap();
    let client = HfClient::builder()
        .api_key(TOKEN)
        .base_url(mock.url())
        .downloads(DownloadSettings {
            allow_private: Some(private_downloads),
            ..DownloadSettings::default()
        })
        .build()
        .unwrap();
    (mock, client)
}

#[tokio::test]
async fn hf_inference_answers_bytes_without_a_mapping() {
    let model = "stabilityai/stable-diffusion-xl-base-1.0";
    let (mock, hf) = client(
        vec![UpstreamStep {
            expect: expect(
                "POST",
                &format!("/hf-inference/models/{model}"),
                Some(json!({"inputs": "A fox", "parameters": {"width": 1024, "height": 1024, "seed": 3}})),
            ),
            respond: Respond::recorded(env!("CARGO_MANIFEST_DIR"), "image/hf_inference_png.json"),
        }],
        false,
    )
    .await;
    let mut req = ImageRequest::new(format!("{model}:hf-inference"), "A fox");
    req.size = Some("1024x1024".into());
    req.seed = Some(3);
    let r = hf.generate_image(req).await.unwrap();
    assert!(matches!(&r.images[0], MediaOutput::Bytes { mime, .. } if mime == "image/png"));
    assert_eq!(r.billing.charges[0].size.as_deref(), Some("1024x1024"));
    assert_eq!(mock.verify(), Vec::<String>::new());
}

#[tokio::test]
async fn fal_answers_its_url_and_the_mapping_is_read_once() {
    let answer = || Respond::recorded(env!("CARGO_MANIFEST_DIR"), "image/fal_flux_dev.json");
    let (mock, hf) = client(
        vec![
            mapping_step(),
            fal_step(json!({"prompt": "A fox"}), answer()),
            fal_step(
                json!({"prompt": "A hare", "image_size": {"width": 1024, "height": 1024}}),
                answer(),
            ),
        ],
        false,
    )
    .await;
    let model = format!("{FLUX}:fal-ai");
    let r = hf
        .generate_image(ImageRequest::new(&model, "A fox"))
        .await
        .unwrap();
    match &r.images[0] {
        MediaOutput::Url { url, mime } => {
            assert_eq!(
                url,
                "https://v3.fal.media/files/penguin/geVAn5_K0P5ssyjlAvM0H.jpeg"
            );
            assert_eq!(mime.as_deref(), Some("image/jpeg"));
        }
        other => panic!("{other:?}"),
    }
    // fal's default size prices the image.
    assert_eq!(r.billing.charges[0].size.as_deref(), Some("1024x768"));
    let mut req = ImageRequest::new(&model, "A hare");
    req.size = Some("1024x1024".into());
    req.response_format = Some(ImageFormat::Url);
    hf.generate_image(req).await.unwrap();
    assert_eq!(mock.verify(), Vec::<String>::new());
}

#[tokio::test]
async fn fal_urls_are_downloaded_when_bytes_are_wanted() {
    // fal's CDN: another host than the router's.
    let cdn = MockUpstream::start(vec![UpstreamStep {
        expect: UpstreamExpect {
            method: Some("GET".into()),
            path: Some("/files/fox.png".into()),
            ..UpstreamExpect::default()
        },
        respond: Respond {
            base64: Some(PNG.into()),
            headers: BTreeMap::from([("content-type".to_owned(), "image/png".to_owned())]),
            ..Respond::default()
        },
    }])
    .await
    .unwrap();
    let (mock, hf) = client(
        vec![
            mapping_step(),
            fal_step(
                json!({"prompt": "A fox"}),
                Respond::json(json!({
                    "images": [{"url": format!("{}/files/fox.png", cdn.url()), "content_type": "image/png"}],
                    "has_nsfw_concepts": [false]
                })),
            ),
        ],
        true,
    )
    .await;
    let mut req = ImageRequest::new(format!("{FLUX}:fal-ai"), "A fox");
    req.response_format = Some(ImageFormat::B64Json);
    let r = hf.generate_image(req).await.unwrap();
    assert!(matches!(&r.images[0], MediaOutput::Bytes { mime, .. } if mime == "image/png"));
    // No token goes to the image's host.
    assert_eq!(cdn.received()[0].header("authorization"), None);
    assert_eq!(cdn.verify(), Vec::<String>::new());
    assert_eq!(mock.verify(), Vec::<String>::new());
}

#[tokio::test]
async fn a_failed_download_after_fal_drew_is_in_doubt() {
    let (mock, hf) = client(
        vec![
            mapping_step(),
            fal_step(
                json!({"prompt": "A fox"}),
                Respond::json(json!({"images": [{"url": "http://127.0.0.1:9/gone.png"}]})),
            ),
        ],
        false,
    )
    .await;
    let mut req = ImageRequest::new(format!("{FLUX}:fal-ai"), "A fox");
    req.response_format = Some(ImageFormat::B64Json);
    let e = hf.generate_image(req).await.unwrap_err();
    assert!(e.is_in_doubt(), "{e:?}");
    assert!(!e.is_retryable());
    assert_eq!(mock.verify(), Vec::<String>::new());
}

#[tokio::test]
async fn without_a_suffix_the_hub_picks_the_backend() {
    let (mock, hf) = client(
        vec![
            mapping_step(),
            fal_step(
                json!({"prompt": "A fox"}),
                Respond::recorded(env!("CARGO_MANIFEST_DIR"), "image/fal_flux_dev.json"),
            ),
        ],
        false,
    )
    .await;
    let r = hf
        .generate_image(ImageRequest::new(FLUX, "A fox"))
        .await
        .unwrap();
    assert!(matches!(&r.images[0], MediaOutput::Url { .. }));
    assert_eq!(r.billing.charges[0].size.as_deref(), Some("1024x768"));
    assert_eq!(mock.verify(), Vec::<String>::new());
}

#[tokio::test]
async fn together_answers_base64() {
    let mut e = expect("GET", "/api/models/black-forest-labs/FLUX.1-schnell", None);
    e.query = BTreeMap::from([("expand[]".to_owned(), json!("inferenceProviderMapping"))]);
    let (mock, hf) = client(
        vec![
            UpstreamStep {
                expect: e,
                respond: Respond::json(json!({"inferenceProviderMapping": [
                    {"provider": "together", "providerId": "black-forest-labs/FLUX.1-schnell-Free", "status": "live", "task": "text-to-image"}
                ]})),
            },
            UpstreamStep {
                expect: expect(
                    "POST",
                    "/together/v1/images/generations",
                    Some(json!({"model": "black-forest-labs/FLUX.1-schnell-Free", "prompt": "A fox", "response_format": "base64", "n": 2})),
                ),
                respond: Respond::json(json!({"id": "91f2", "model": "black-forest-labs/FLUX.1-schnell-Free", "object": "list",
                    "data": [{"index": 0, "b64_json": PNG}, {"index": 1, "b64_json": PNG}]})),
            },
        ],
        false,
    )
    .await;
    let mut req = ImageRequest::new("black-forest-labs/FLUX.1-schnell:together", "A fox");
    req.n = Some(2);
    let r = hf.generate_image(req).await.unwrap();
    assert_eq!(r.images.len(), 2);
    assert_eq!(r.billing.units, 2);
    assert_eq!(mock.verify(), Vec::<String>::new());
}

#[tokio::test]
async fn errors() {
    // A model the Hub does not know.
    let mut e = expect("GET", "/api/models/nobody/nothing", None);
    e.query = BTreeMap::new();
    let (mock, hf) = client(
        vec![
            UpstreamStep {
                expect: e,
                respond: Respond {
                    status: 404,
                    headers: BTreeMap::from([
                        ("content-type".to_owned(), "application/json".to_owned()),
                        ("x-error-code".to_owned(), "RepoNotFound".to_owned()),
                    ]),
                    json: Some(json!({"error": "Repository not found"})),
                    ..Respond::default()
                },
            },
            mapping_step(),
            fal_step(
                json!({"prompt": "A fox"}),
                Respond {
                    status: 422,
                    json: Some(json!({"detail": [{"loc": ["body", "prompt"], "msg": "The content could not be processed because it contained material flagged by a content checker.", "type": "content_policy_violation"}]})),
                    ..Respond::default()
                },
            ),
        ],
        false,
    )
    .await;
    let e = hf
        .generate_image(ImageRequest::new("nobody/nothing:fal-ai", "A fox"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), &ErrorKind::NotFound);
    assert!(e.message().contains("Repository not found"), "{e}");
    let e = hf
        .generate_image(ImageRequest::new(format!("{FLUX}:fal-ai"), "A fox"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), &ErrorKind::ContentFiltered);
    assert!(e.message().contains("content checker"), "{e}");
    assert_eq!(mock.verify(), Vec::<String>::new());

    // Refused before any call: a backend without URLs asked for one.
    let (mock, hf) = client(vec![], false).await;
    let mut req = ImageRequest::new("a/b:hf-inference", "A fox");
    req.response_format = Some(ImageFormat::Url);
    let e = hf.generate_image(req).await.unwrap_err();
    assert_eq!(e.param(), Some("response_format"));
    assert!(mock.received().is_empty());
}

#[tokio::test]
async fn register_adds_images_and_prices_fal() {
    let cfg = ProviderConfig {
        api_key: Some(TOKEN.into()),
        base_url: Some("http://127.0.0.1:9".into()),
        models: vec![ModelEntry::Serving(ServingModel {
            id: format!("{FLUX}:fal-ai"),
            serves: vec![Service::Images],
        })],
        ..ProviderConfig::default()
    };
    let mut reg = Registry::new();
    gw_hf::register(&mut reg, &cfg).unwrap();
    assert!(reg.services_of(PROVIDER).contains(&Service::Images));
    let services: Vec<_> = reg
        .models()
        .map(|(r, s)| (r.to_string(), s.clone()))
        .collect();
    assert_eq!(services[0].0, format!("hf/{FLUX}:fal-ai"));
    assert!(services[0].1.contains(&Service::Images));
    let images = reg.image(PROVIDER).unwrap();
    let req = ImageRequest::new(format!("{FLUX}:fal-ai"), "A fox");
    let billing = images.generation_billing_dyn(&req);
    let cost = reg
        .prices()
        .charges_cost(PROVIDER, &req.model, &billing.charges)
        .unwrap();
    assert_eq!(cost.to_string(), "0.025");
}
