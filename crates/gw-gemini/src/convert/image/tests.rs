use gateway_core::{ErrorKind, ImageRequest, MediaOutput, PriceUnit, encode_base64};
use serde_json::{Value, json};

use super::*;

/// A 1x1 PNG.
const PNG: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=";

fn req(model: &str) -> ImageRequest {
    ImageRequest::new(model, "A watercolor fox in snow")
}

fn json_of<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap()
}

fn refused(r: &ImageRequest) -> (ErrorKind, Option<String>) {
    let e = check_image_request(r).unwrap_err();
    (e.kind().clone(), e.param().map(str::to_owned))
}

#[test]
fn the_name_decides_the_api() {
    assert_eq!(
        image_api("imagen-4.0-generate-001"),
        Some(ImageApi::Imagen(Imagen { two_k: true }))
    );
    assert_eq!(
        image_api("imagen-4.0-fast-generate-001"),
        Some(ImageApi::Imagen(Imagen { two_k: false }))
    );
    assert_eq!(
        image_api("models/imagen-3.0-generate-002"),
        Some(ImageApi::Imagen(Imagen { two_k: false }))
    );
    assert_eq!(
        image_api("gemini-2.5-flash-image"),
        Some(ImageApi::Gemini(GeminiImage::Flash25))
    );
    assert_eq!(
        image_api("gemini-2.5-flash-image-preview"),
        Some(ImageApi::Gemini(GeminiImage::Flash25))
    );
    assert_eq!(
        image_api("gemini-3-pro-image-preview"),
        Some(ImageApi::Gemini(GeminiImage::Pro3))
    );
    assert_eq!(
        image_api("gemini-3.1-flash-image-preview"),
        Some(ImageApi::Gemini(GeminiImage::Flash31))
    );
    assert_eq!(
        image_api("gemini-2.0-flash-preview-image-generation"),
        Some(ImageApi::Gemini(GeminiImage::Flash20))
    );
    assert_eq!(
        image_api("gemini-4-ultra-image"),
        Some(ImageApi::Gemini(GeminiImage::Other))
    );
    assert_eq!(image_api("gemini-2.5-flash"), None);
    assert_eq!(
        refused(&req("gemini-2.5-flash")),
        (ErrorKind::Unsupported, Some("model".into()))
    );
}

#[test]
fn imagen_body() {
    let mut r = req("imagen-4.0-generate-001");
    r.n = Some(2);
    r.aspect_ratio = Some("16:9".into());
    r.output_format = Some("jpeg".into());
    r.options
        .insert("person_generation".into(), json!("allow_adult"));
    let ImageApi::Imagen(imagen) = image_api(&r.model).unwrap() else {
        unreachable!()
    };
    assert_eq!(
        json_of(&imagen_request(&r, imagen).unwrap()),
        json!({
            "instances": [{"prompt": "A watercolor fox in snow"}],
            "parameters": {
                "sampleCount": 2,
                "aspectRatio": "16:9",
                "personGeneration": "allow_adult",
                "includeRaiReason": true,
                "outputOptions": {"mimeType": "image/jpeg"}
            }
        })
    );
}

#[test]
fn imagen_sizes() {
    let body = |model: &str, size: &str| {
        let mut r = req(model);
        r.size = Some(size.into());
        let ImageApi::Imagen(imagen) = image_api(model).unwrap() else {
            unreachable!()
        };
        imagen_request(&r, imagen).map(|b| json_of(&b.parameters))
    };
    let p = body("imagen-4.0-generate-001", "1408x768").unwrap();
    assert_eq!(p["aspectRatio"], "16:9");
    assert!(p.get("sampleImageSize").is_none(), "{p}");
    let p = body("imagen-4.0-generate-001", "1024x1024").unwrap();
    assert_eq!(p["aspectRatio"], "1:1");
    let p = body("imagen-4.0-ultra-generate-001", "2816x1536").unwrap();
    assert_eq!(
        (p["aspectRatio"].clone(), p["sampleImageSize"].clone()),
        (json!("16:9"), json!("2K"))
    );
    let p = body("imagen-4.0-generate-001", "2048x2048").unwrap();
    assert_eq!(p["sampleImageSize"], "2K");
    // Exact ratios at another pixel size take the nearest class.
    let p = body("imagen-4.0-generate-001", "1920x1080").unwrap();
    assert_eq!(
        (p["aspectRatio"].clone(), p["sampleImageSize"].clone()),
        (json!("16:9"), json!("2K"))
    );
    // No 2K on Fast nor Imagen 3; no 3:2 anywhere.
    for (model, size) in [
        ("imagen-4.0-fast-generate-001", "2048x2048"),
        ("imagen-3.0-generate-002", "2048x2048"),
        ("imagen-4.0-generate-001", "1536x1024"),
        ("imagen-4.0-generate-001", "1792x1024"),
        ("imagen-4.0-generate-001", "big"),
    ] {
        let e = body(model, size).unwrap_err();
        assert_eq!(e.kind(), &ErrorKind::Unsupported, "{model} {size}");
        assert_eq!(e.param(), Some("size"), "{model} {size}");
        assert!(e.message().contains("1408x768"), "{}", e.message());
    }
}

#[test]
fn imagen_refusals_name_the_field() {
    type Change = Box<dyn Fn(&mut ImageRequest)>;
    let cases: Vec<(Change, &str)> = vec![
        (Box::new(|r| r.n = Some(5)), "n"),
        (Box::new(|r| r.seed = Some(1)), "seed"),
        (
            Box::new(|r| r.negative_prompt = Some("x".into())),
            "negative_prompt",
        ),
        (
            Box::new(|r| r.output_format = Some("webp".into())),
            "output_format",
        ),
        (
            Box::new(|r| r.aspect_ratio = Some("2:3".into())),
            "aspect_ratio",
        ),
        (
            Box::new(|r| {
                r.size = Some("1024x1024".into());
                r.aspect_ratio = Some("16:9".into());
            }),
            "aspect_ratio",
        ),
        (
            Box::new(|r| {
                r.options
                    .insert("person_generation".into(), json!("everyone"));
            }),
            "options.person_generation",
        ),
        (
            Box::new(|r| {
                r.options.insert("image_size".into(), json!("2K"));
            }),
            "options.image_size",
        ),
        (
            Box::new(|r| {
                r.options.insert("guidance".into(), json!(1));
            }),
            "options.guidance",
        ),
    ];
    for (change, param) in cases {
        let mut r = req("imagen-4.0-fast-generate-001");
        change(&mut r);
        assert_eq!(refused(&r).1.as_deref(), Some(param), "{r:?}");
    }
}

#[test]
fn gemini_image_body() {
    let mut r = req("gemini-2.5-flash-image");
    r.size = Some("1344x768".into());
    r.seed = Some(7);
    let body = gemini_image_request(&r, GeminiImage::Flash25).unwrap();
    assert_eq!(
        json_of(&body),
        json!({
            "contents": [{"role": "user", "parts": [{"text": "A watercolor fox in snow"}]}],
            "generationConfig": {
                "responseModalities": ["IMAGE"],
                "imageConfig": {"aspectRatio": "16:9"},
                "seed": 7
            }
        })
    );
    // No shape asked: no `imageConfig`.
    let body = gemini_image_request(&req("gemini-2.5-flash-image"), GeminiImage::Flash25).unwrap();
    assert!(
        json_of(&body)["generationConfig"]
            .get("imageConfig")
            .is_none()
    );
    // The 2.0 preview wants text too.
    let body = gemini_image_request(
        &req("gemini-2.0-flash-preview-image-generation"),
        GeminiImage::Flash20,
    )
    .unwrap();
    assert_eq!(
        json_of(&body)["generationConfig"]["responseModalities"],
        json!(["TEXT", "IMAGE"])
    );
    // Gemini 3 Pro Image: sizes by class.
    let mut r = req("gemini-3-pro-image-preview");
    r.aspect_ratio = Some("21:9".into());
    r.options.insert("image_size".into(), json!("4K"));
    let body = gemini_image_request(&r, GeminiImage::Pro3).unwrap();
    assert_eq!(
        json_of(&body)["generationConfig"]["imageConfig"],
        json!({"aspectRatio": "21:9", "imageSize": "4K"})
    );
    let mut r = req("gemini-3-pro-image-preview");
    r.size = Some("2048x2048".into());
    let body = gemini_image_request(&r, GeminiImage::Pro3).unwrap();
    assert_eq!(
        json_of(&body)["generationConfig"]["imageConfig"],
        json!({"aspectRatio": "1:1", "imageSize": "2K"})
    );
}

#[test]
fn gemini_image_refusals_name_the_field() {
    for (model, change, param) in [
        ("gemini-2.5-flash-image", ("n", json!(2)), "n"),
        (
            "gemini-2.5-flash-image",
            ("size", json!("1792x1024")),
            "size",
        ),
        (
            "gemini-2.5-flash-image",
            ("size", json!("2048x2048")),
            "size",
        ),
        (
            "gemini-2.5-flash-image",
            ("aspect_ratio", json!("1:4")),
            "aspect_ratio",
        ),
        (
            "gemini-2.5-flash-image",
            ("image_size", json!("2K")),
            "options.image_size",
        ),
        (
            "gemini-2.5-flash-image",
            ("output_format", json!("png")),
            "output_format",
        ),
        (
            "gemini-2.5-flash-image",
            ("negative_prompt", json!("x")),
            "negative_prompt",
        ),
        (
            "gemini-3-pro-image-preview",
            ("image_size", json!("8K")),
            "options.image_size",
        ),
        (
            "gemini-2.0-flash-preview-image-generation",
            ("aspect_ratio", json!("1:1")),
            "aspect_ratio",
        ),
    ] {
        let mut r = req(model);
        match change.0 {
            "n" => r.n = Some(2),
            "size" => r.size = change.1.as_str().map(str::to_owned),
            "aspect_ratio" => r.aspect_ratio = change.1.as_str().map(str::to_owned),
            "output_format" => r.output_format = Some("png".into()),
            "negative_prompt" => r.negative_prompt = Some("x".into()),
            name => {
                r.options.insert(name.into(), change.1.clone());
            }
        }
        assert_eq!(refused(&r).1.as_deref(), Some(param), "{model} {change:?}");
    }
    let mut r = req("gemini-3.1-flash-image-preview");
    r.aspect_ratio = Some("1:4".into());
    check_image_request(&r).unwrap();
}

#[test]
fn estimates_never_fall_short() {
    let b = image_billing(&req("gemini-2.5-flash-image"));
    assert_eq!(b.units, 1);
    assert_eq!(b.charges[0].unit, PriceUnit::InputToken);
    assert_eq!(
        b.charges[0].quantity,
        "A watercolor fox in snow".len() as u64
    );
    assert_eq!(b.charges[1].unit, PriceUnit::OutputToken);
    assert_eq!(b.charges[1].quantity, 1290);
    assert_eq!(b.charges[1].modality.as_deref(), Some("image"));
    let mut r = req("gemini-3-pro-image-preview");
    r.options.insert("image_size".into(), json!("4K"));
    assert_eq!(image_billing(&r).charges[1].quantity, 2000);
    let mut r = req("gemini-3.1-flash-image-preview");
    r.size = Some("2048x2048".into());
    assert_eq!(image_billing(&r).charges[1].quantity, 1680);
    assert_eq!(
        image_billing(&req("gemini-9-image")).charges[1].quantity,
        2520
    );
    let mut r = req("imagen-4.0-generate-001");
    r.n = Some(3);
    let b = image_billing(&r);
    assert_eq!(
        (b.units, b.charges[0].unit, b.charges[0].quantity),
        (3, PriceUnit::Image, 3)
    );
}

#[test]
fn imagen_answers() {
    let answer: wire::PredictResponse = serde_json::from_value(json!({"predictions": [
        {"bytesBase64Encoded": PNG, "mimeType": "image/png"},
        {"bytesBase64Encoded": PNG, "mimeType": "image/png"}
    ]}))
    .unwrap();
    let r = imagen_response(answer, "imagen-4.0-generate-001").unwrap();
    assert_eq!(r.images.len(), 2);
    assert_eq!(r.billing.units, 2);
    assert!(matches!(&r.images[0], MediaOutput::Bytes { mime, .. } if mime == "image/png"));

    // Some filtered: the others are kept.
    let answer: wire::PredictResponse = serde_json::from_value(json!({"predictions": [
        {"bytesBase64Encoded": PNG, "mimeType": "image/png"},
        {"raiFilteredReason": "filtered"}
    ]}))
    .unwrap();
    assert_eq!(imagen_response(answer, "m").unwrap().images.len(), 1);

    for body in [
        json!({}),
        json!({"predictions": [{"raiFilteredReason": "Unable to show generated images. Your current safety filter threshold filtered out the generated images."}]}),
    ] {
        let answer: wire::PredictResponse = serde_json::from_value(body).unwrap();
        let e = imagen_response(answer, "m").unwrap_err();
        assert_eq!(e.kind(), &ErrorKind::ContentFiltered, "{e}");
    }
    let answer: wire::PredictResponse =
        serde_json::from_value(json!({"predictions": [{"bytesBase64Encoded": encode_base64(b"hello"), "mimeType": "text/plain"}]}))
            .unwrap();
    assert_eq!(
        imagen_response(answer, "m").unwrap_err().kind(),
        &ErrorKind::Decode
    );
}

#[test]
fn gemini_image_answers() {
    let answer: wire::GenerateContentResponse = serde_json::from_value(json!({
        "candidates": [{"content": {"role": "model", "parts": [
            {"text": "Here is your fox."},
            {"inlineData": {"mimeType": "image/png", "data": PNG}}
        ]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 1300, "totalTokenCount": 1309,
            "candidatesTokensDetails": [{"modality": "IMAGE", "tokenCount": 1290}, {"modality": "TEXT", "tokenCount": 10}]}
    }))
    .unwrap();
    let r = gemini_image_response(answer, "gemini-2.5-flash-image").unwrap();
    assert_eq!(r.images.len(), 1);
    assert_eq!(r.usage.units, 1);
    assert_eq!(r.usage.tokens.input_tokens, 9);
    let charges: Vec<_> = r
        .billing
        .charges
        .iter()
        .map(|c| (c.unit, c.quantity, c.modality.clone()))
        .collect();
    assert_eq!(
        charges,
        vec![
            (PriceUnit::InputToken, 9, None),
            (PriceUnit::OutputToken, 1290, Some("image".into())),
            (PriceUnit::OutputToken, 10, Some("text".into())),
        ]
    );

    // Snake case, as some proxies answer; no split of the output tokens.
    let answer: wire::GenerateContentResponse = serde_json::from_value(json!({
        "candidates": [{"content": {"parts": [{"inline_data": {"mime_type": "image/png", "data": PNG}}]}}],
        "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 1290}
    }))
    .unwrap();
    let r = gemini_image_response(answer, "m").unwrap();
    assert_eq!(r.billing.charges.len(), 2);
    assert_eq!(r.billing.charges[1].quantity, 1290);
}

#[test]
fn gemini_image_blocks() {
    for body in [
        json!({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}}),
        json!({"candidates": [{"finishReason": "IMAGE_SAFETY"}]}),
        json!({"candidates": [{"content": {"parts": [{"text": "I can't draw that."}]}, "finishReason": "SAFETY"}]}),
    ] {
        let answer: wire::GenerateContentResponse = serde_json::from_value(body.clone()).unwrap();
        let e = gemini_image_response(answer, "m").unwrap_err();
        assert_eq!(e.kind(), &ErrorKind::ContentFiltered, "{body}");
    }
    let answer: wire::GenerateContentResponse = serde_json::from_value(json!({
        "candidates": [{"content": {"parts": [{"text": "Which fox?"}]}, "finishReason": "STOP"}]
    }))
    .unwrap();
    let e = gemini_image_response(answer, "m").unwrap_err();
    assert_eq!(e.kind(), &ErrorKind::Decode);
    assert!(e.message().contains("Which fox?"), "{e}");
}
