use gateway_core::{ErrorKind, ImageFormat, ImageRequest, MediaOutput, PriceUnit, encode_base64};
use serde_json::{Value, json};

use super::*;

/// A 1x1 PNG.
const PNG: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=";

fn req(model: &str) -> ImageRequest {
    ImageRequest::new(model, "Astronaut riding a horse")
}

fn json_of<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap()
}

#[test]
fn the_suffix_names_the_backend() {
    assert_eq!(
        split_model("black-forest-labs/FLUX.1-dev:fal-ai").unwrap(),
        ("black-forest-labs/FLUX.1-dev", Some(Backend::FalAi))
    );
    assert_eq!(
        split_model("stabilityai/sdxl:hf-inference").unwrap(),
        ("stabilityai/sdxl", Some(Backend::HfInference))
    );
    assert_eq!(split_model("a/b").unwrap(), ("a/b", None));
    for (model, kind) in [
        ("a/b:replicate", ErrorKind::Unsupported),
        ("a/b:fastest", ErrorKind::Unsupported),
        ("../x", ErrorKind::InvalidRequest),
        ("a/b/c", ErrorKind::InvalidRequest),
        ("a?b/c", ErrorKind::InvalidRequest),
    ] {
        let e = split_model(model).unwrap_err();
        assert_eq!((e.kind(), e.param()), (&kind, Some("model")), "{model}");
    }
}

#[test]
fn checks_name_the_field() {
    type Change = fn(&mut ImageRequest);
    let cases: Vec<(&str, Change, &str)> = vec![
        ("a/b:hf-inference", |r| r.n = Some(2), "n"),
        ("a/b:fal-ai", |r| r.n = Some(5), "n"),
        ("a/b", |r| r.n = Some(5), "n"),
        ("a/b:fal-ai", |r| r.size = Some("big".into()), "size"),
        (
            "a/b:fal-ai",
            |r| r.aspect_ratio = Some("1:1".into()),
            "aspect_ratio",
        ),
        (
            "a/b:hf-inference",
            |r| r.response_format = Some(ImageFormat::Url),
            "response_format",
        ),
        (
            "a/b:together",
            |r| r.response_format = Some(ImageFormat::Url),
            "response_format",
        ),
        (
            "a/b:fal-ai",
            |r| r.negative_prompt = Some("x".into()),
            "negative_prompt",
        ),
        (
            "a/b:fal-ai",
            |r| r.output_format = Some("webp".into()),
            "output_format",
        ),
        (
            "a/b:hf-inference",
            |r| r.output_format = Some("png".into()),
            "output_format",
        ),
        (
            "a/b:together",
            |r| {
                r.options.insert("guidance_scale".into(), json!(3));
            },
            "options.guidance_scale",
        ),
        (
            "a/b",
            |r| {
                r.options.insert("loras".into(), json!([]));
            },
            "options.loras",
        ),
    ];
    for (model, change, param) in cases {
        let mut r = req(model);
        change(&mut r);
        let (_, backend) = split_model(model).unwrap();
        let e = check(&r, backend).unwrap_err();
        assert_eq!(e.param(), Some(param), "{model} {r:?}");
    }
    let mut r = req("a/b:fal-ai");
    r.response_format = Some(ImageFormat::Url);
    r.n = Some(4);
    r.output_format = Some("png".into());
    check(&r, Some(Backend::FalAi)).unwrap();
}

#[test]
fn bodies() {
    let mut r = req("a/b:hf-inference");
    r.size = Some("1024x768".into());
    r.seed = Some(42);
    r.negative_prompt = Some("blurry".into());
    r.options.insert("num_inference_steps".into(), json!(4));
    assert_eq!(
        json_of(&hf_inference_request(&r).unwrap()),
        json!({"inputs": "Astronaut riding a horse", "parameters": {
            "width": 1024, "height": 768, "seed": 42, "negative_prompt": "blurry",
            "num_inference_steps": 4
        }})
    );
    assert_eq!(
        json_of(&hf_inference_request(&req("a/b")).unwrap()),
        json!({"inputs": "Astronaut riding a horse"})
    );

    let mut r = req("a/b:fal-ai");
    r.size = Some("1024x1024".into());
    r.n = Some(2);
    r.options.insert("guidance_scale".into(), json!(3.5));
    assert_eq!(
        json_of(&fal_request(&r).unwrap()),
        json!({"prompt": "Astronaut riding a horse", "image_size": {"width": 1024, "height": 1024},
               "num_images": 2, "guidance_scale": 3.5})
    );
    assert_eq!(
        json_of(&fal_request(&req("a/b:fal-ai")).unwrap()),
        json!({"prompt": "Astronaut riding a horse"})
    );

    let mut r = req("a/b:together");
    r.size = Some("512x512".into());
    r.options.insert("num_inference_steps".into(), json!(4));
    assert_eq!(
        json_of(&together_request(&r, "black-forest-labs/FLUX.1-schnell").unwrap()),
        json!({"model": "black-forest-labs/FLUX.1-schnell", "prompt": "Astronaut riding a horse",
               "response_format": "base64", "width": 512, "height": 512, "steps": 4})
    );
}

fn mappings(value: Value) -> Vec<wire::ProviderMapping> {
    let info: wire::ModelInfo =
        serde_json::from_value(json!({"inferenceProviderMapping": value})).unwrap();
    info.inference_provider_mapping.unwrap().0
}

#[test]
fn the_mapping_picks_the_backend_and_its_id() {
    // The object form, in the Hub's order (not alphabetical).
    // Read from text: a `json!` object would be sorted before the mapping sees it.
    let info: wire::ModelInfo = serde_json::from_str(r#"{"_id": "66aaa908fc35e079a941470d", "id": "black-forest-labs/FLUX.1-dev",
        "inferenceProviderMapping": {
            "replicate": {"providerId": "black-forest-labs/flux-dev", "status": "live", "task": "text-to-image"},
            "fal-ai": {"providerId": "fal-ai/flux/dev", "status": "live", "task": "text-to-image"},
            "hf-inference": {"providerId": "black-forest-labs/FLUX.1-dev", "status": "live", "task": "text-to-image"}
        }}"#).unwrap();
    let object = info.inference_provider_mapping.unwrap().0;
    assert_eq!(object[0].provider, "replicate");
    assert_eq!(
        pick(&object, Some(Backend::FalAi), "m").unwrap(),
        (Backend::FalAi, "fal-ai/flux/dev".to_owned())
    );
    // No backend named: the first one this crate speaks.
    assert_eq!(
        pick(&object, None, "m").unwrap(),
        (Backend::FalAi, "fal-ai/flux/dev".to_owned())
    );
    let e = pick(&object, Some(Backend::Together), "m").unwrap_err();
    assert_eq!(e.kind(), &ErrorKind::NotFound);
    assert!(e.message().contains("fal-ai (text-to-image)"), "{e}");

    // The list form.
    let list = mappings(json!([
        {"provider": "together", "providerId": "black-forest-labs/FLUX.1-schnell", "status": "live", "task": "text-to-image"},
        {"provider": "groq", "providerId": "x", "status": "live", "task": "conversational"}
    ]));
    assert_eq!(
        pick(&list, None, "m").unwrap(),
        (
            Backend::Together,
            "black-forest-labs/FLUX.1-schnell".to_owned()
        )
    );
    let chat = mappings(
        json!({"together": {"providerId": "x", "status": "live", "task": "conversational"}}),
    );
    assert_eq!(
        pick(&chat, Some(Backend::Together), "m")
            .unwrap_err()
            .kind(),
        &ErrorKind::Unsupported
    );
    assert_eq!(
        pick(&chat, None, "m").unwrap_err().kind(),
        &ErrorKind::NotFound
    );
    assert_eq!(
        pick(&[], None, "m").unwrap_err().kind(),
        &ErrorKind::NotFound
    );
}

#[test]
fn billing_by_size() {
    let b = billing(&req("a/b:fal-ai"), Some(Backend::FalAi), 2);
    assert_eq!(
        (b.units, b.charges[0].unit, b.charges[0].quantity),
        (2, PriceUnit::Image, 2)
    );
    assert_eq!(b.charges[0].size.as_deref(), Some(FAL_DEFAULT_SIZE));
    let mut r = req("a/b:hf-inference");
    assert_eq!(
        billing(&r, Some(Backend::HfInference), 1).charges[0].size,
        None
    );
    r.size = Some("1024X1024".into());
    assert_eq!(
        billing(&r, Some(Backend::HfInference), 1).charges[0]
            .size
            .as_deref(),
        Some("1024x1024")
    );
}

#[test]
fn answers() {
    let png = gateway_core::decode_base64(PNG).unwrap();
    let r = hf_inference_response(png.clone(), &req("a/b:hf-inference")).unwrap();
    assert!(matches!(&r.images[0], MediaOutput::Bytes { mime, .. } if mime == "image/png"));
    assert_eq!(r.billing.units, 1);
    assert_eq!(
        hf_inference_response(b"{\"error\":\"x\"}".to_vec(), &req("a/b"))
            .unwrap_err()
            .kind(),
        &ErrorKind::Decode
    );

    let t: wire::TogetherResponse = serde_json::from_value(
        json!({"data": [{"index": 0, "b64_json": PNG}, {"index": 1, "b64_json": PNG}]}),
    )
    .unwrap();
    assert_eq!(
        together_response(t, &req("a/b:together"))
            .unwrap()
            .images
            .len(),
        2
    );
    let t: wire::TogetherResponse = serde_json::from_value(json!({"data": []})).unwrap();
    assert_eq!(
        together_response(t, &req("a/b")).unwrap_err().kind(),
        &ErrorKind::Decode
    );

    let f: wire::FalResponse = serde_json::from_value(json!({
        "images": [
            {"url": "https://v3.fal.media/files/x.jpeg", "width": 1024, "height": 768, "content_type": "image/jpeg"},
            {"url": format!("data:image/png;base64,{PNG}")}
        ],
        "seed": 42, "has_nsfw_concepts": [false, true]
    })).unwrap();
    let (outputs, flagged) = fal_outputs(f).unwrap();
    assert!(
        matches!(&outputs[0], FalOutput::Url { url, mime } if url.ends_with("x.jpeg") && mime.as_deref() == Some("image/jpeg"))
    );
    assert!(matches!(
        &outputs[1],
        FalOutput::Bytes(MediaOutput::Bytes { .. })
    ));
    assert_eq!(flagged, vec![false, true]);
    for bad in [
        json!({"images": []}),
        json!({"images": [{"url": "ftp://x"}]}),
        json!({"images": [{"url": format!("data:image/png;base64,{}", encode_base64(b"text"))}]}),
    ] {
        let f: wire::FalResponse = serde_json::from_value(bad.clone()).unwrap();
        assert_eq!(
            fal_outputs(f).err().map(|e| e.kind().clone()),
            Some(ErrorKind::Decode),
            "{bad}"
        );
    }
}

#[test]
fn fal_content_policy() {
    assert!(is_content_policy(
        r#"{"detail":[{"loc":["body","prompt"],"msg":"The content could not be processed because it contained material flagged by a content checker.","type":"content_policy_violation"}]}"#
    ));
    assert!(!is_content_policy(
        r#"{"detail":[{"msg":"field required","type":"missing"}]}"#
    ));
    assert!(!is_content_policy("not json"));
}
