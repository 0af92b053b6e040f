use gateway_core::{ErrorKind, ImageFormat, ImageRequest, MediaOutput, decode_base64};
use serde_json::json;

use super::*;

/// A 1x1 PNG.
const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";

fn req(model: &str) -> ImageRequest {
    ImageRequest::new(model, "A lighthouse at dusk")
}

fn fields(req: &ImageRequest) -> Vec<(&'static str, String)> {
    generate_request(req).unwrap().fields
}

/// The error `req` is refused with: kind and the field it names.
fn refusal(req: &ImageRequest) -> (ErrorKind, String) {
    let err = generate_request(req).unwrap_err();
    assert_eq!(err.provider(), PROVIDER, "{err}");
    (
        err.kind().clone(),
        err.param().unwrap_or_default().to_owned(),
    )
}

#[test]
fn each_model_goes_to_its_endpoint() {
    for (model, path, sd3) in [
        ("ultra", "/v2beta/stable-image/generate/ultra", false),
        ("core", "/v2beta/stable-image/generate/core", false),
        ("sd3.5-large", "/v2beta/stable-image/generate/sd3", true),
        (
            "sd3.5-large-turbo",
            "/v2beta/stable-image/generate/sd3",
            true,
        ),
        ("sd3.5-medium", "/v2beta/stable-image/generate/sd3", true),
        ("sd3.5-flash", "/v2beta/stable-image/generate/sd3", true),
        ("sd3-large", "/v2beta/stable-image/generate/sd3", true),
        ("sd3-large-turbo", "/v2beta/stable-image/generate/sd3", true),
        ("sd3-medium", "/v2beta/stable-image/generate/sd3", true),
    ] {
        let call = generate_request(&req(model)).unwrap();
        assert_eq!(call.path, path, "{model}");
        let mut expected = vec![("prompt", "A lighthouse at dusk".to_owned())];
        if sd3 {
            expected.push(("model", model.to_owned()));
        }
        assert_eq!(call.fields, expected, "{model}");
    }
    assert_eq!(MODEL_IDS.len(), MODELS.len());
}

#[test]
fn every_field_is_sent_by_its_stability_name() {
    let mut r = req("sd3.5-large");
    r.aspect_ratio = Some("16:9".into());
    r.negative_prompt = Some("people".into());
    r.seed = Some(42);
    r.output_format = Some("jpeg".into());
    r.options
        .insert("style_preset".into(), json!("analog-film"));
    r.options.insert("cfg_scale".into(), json!(4.5));
    assert_eq!(
        fields(&r),
        [
            ("prompt", "A lighthouse at dusk".to_owned()),
            ("model", "sd3.5-large".to_owned()),
            ("aspect_ratio", "16:9".to_owned()),
            ("negative_prompt", "people".to_owned()),
            ("seed", "42".to_owned()),
            ("output_format", "jpeg".to_owned()),
            ("cfg_scale", "4.5".to_owned()),
            ("style_preset", "analog-film".to_owned()),
        ]
    );
}

#[test]
fn a_size_is_sent_as_the_ratio_it_is_exactly() {
    for (size, ratio) in [
        ("1024x1024", "1:1"),
        ("1536x1024", "3:2"),
        ("1024x1536", "2:3"),
        ("1920x1080", "16:9"),
        ("1080x1920", "9:16"),
        ("2560x1080", "64:27"),
        ("1344X768", "7:4"),
        ("2100x900", "21:9"),
        ("800x1000", "4:5"),
        ("1000x800", "5:4"),
        ("900x2100", "9:21"),
    ] {
        let mut r = req("core");
        r.size = Some(size.into());
        let result = generate_request(&r);
        if ["64:27", "7:4"].contains(&ratio) {
            let err = result.unwrap_err();
            assert_eq!(err.kind(), &ErrorKind::Unsupported, "{size}");
            assert_eq!(err.param(), Some("size"));
            assert!(err.message().contains(ratio), "{err}");
        } else {
            let sent = result.unwrap().fields;
            assert!(
                sent.contains(&("aspect_ratio", ratio.to_owned())),
                "{size}: {sent:?}"
            );
        }
    }
    let mut auto = req("core");
    auto.size = Some("auto".into());
    assert_eq!(fields(&auto).len(), 1);
}

#[test]
fn size_and_aspect_ratio_must_agree() {
    let mut r = req("ultra");
    r.size = Some("1920x1080".into());
    r.aspect_ratio = Some("16:9".into());
    assert!(fields(&r).contains(&("aspect_ratio", "16:9".to_owned())));
    r.aspect_ratio = Some("1:1".into());
    assert_eq!(refusal(&r), (ErrorKind::InvalidRequest, "size".into()));
}

#[test]
fn what_stability_cannot_do_is_refused_naming_the_field() {
    use ErrorKind::*;
    let with = |model: &str, f: &dyn Fn(&mut ImageRequest)| {
        let mut r = req(model);
        f(&mut r);
        r
    };
    let cases: Vec<(ImageRequest, ErrorKind, &str)> = vec![
        (req("sd4-ultra"), NotFound, "model"),
        (with("core", &|r| r.n = Some(2)), Unsupported, "n"),
        (with("core", &|r| r.n = Some(0)), InvalidRequest, "n"),
        (
            with("core", &|r| r.response_format = Some(ImageFormat::Url)),
            InvalidRequest,
            "response_format",
        ),
        (
            with("core", &|r| r.prompt = "  ".into()),
            InvalidRequest,
            "prompt",
        ),
        (
            with("core", &|r| r.prompt = "a".repeat(10_001)),
            InvalidRequest,
            "prompt",
        ),
        (
            with("core", &|r| r.size = Some("big".into())),
            InvalidRequest,
            "size",
        ),
        (
            with("core", &|r| r.size = Some("0x10".into())),
            InvalidRequest,
            "size",
        ),
        (
            with("core", &|r| r.size = Some("1792x1024".into())),
            Unsupported,
            "size",
        ),
        (
            with("core", &|r| r.aspect_ratio = Some("4:3".into())),
            InvalidRequest,
            "aspect_ratio",
        ),
        (
            with("sd3.5-large-turbo", &|r| {
                r.negative_prompt = Some("x".into())
            }),
            Unsupported,
            "negative_prompt",
        ),
        (
            with("sd3-large-turbo", &|r| r.negative_prompt = Some("x".into())),
            Unsupported,
            "negative_prompt",
        ),
        (with("core", &|r| r.seed = Some(-1)), InvalidRequest, "seed"),
        (
            with("core", &|r| r.seed = Some(4_294_967_295)),
            InvalidRequest,
            "seed",
        ),
        (
            with("sd3.5-medium", &|r| r.output_format = Some("webp".into())),
            Unsupported,
            "output_format",
        ),
        (
            with("core", &|r| r.output_format = Some("gif".into())),
            InvalidRequest,
            "output_format",
        ),
        (
            with("core", &|r| {
                r.options.insert("cfg_scale".into(), json!(4));
            }),
            InvalidRequest,
            "options.cfg_scale",
        ),
        (
            with("sd3.5-large", &|r| {
                r.options.insert("cfg_scale".into(), json!(11));
            }),
            InvalidRequest,
            "options.cfg_scale",
        ),
        (
            with("ultra", &|r| {
                r.options
                    .insert("style_preset".into(), json!("watercolour"));
            }),
            InvalidRequest,
            "options.style_preset",
        ),
        (
            with("ultra", &|r| {
                r.options.insert("strength".into(), json!(0.5));
            }),
            InvalidRequest,
            "options.strength",
        ),
        (
            with("ultra", &|r| {
                r.options.insert("seed".into(), json!(1));
            }),
            InvalidRequest,
            "options.seed",
        ),
    ];
    for (r, kind, param) in cases {
        assert_eq!(refusal(&r), (kind, param.to_owned()), "{r:?}");
    }
}

#[test]
fn the_turbo_models_alone_refuse_a_negative_prompt() {
    for model in MODEL_IDS {
        let mut r = req(model);
        r.negative_prompt = Some("blur".into());
        let turbo = model.ends_with("-turbo");
        assert_eq!(generate_request(&r).is_err(), turbo, "{model}");
    }
}

#[test]
fn formats_are_normalised_and_checked_per_endpoint() {
    for (model, format, sent) in [
        ("core", "webp", "webp"),
        ("ultra", "JPEG", "jpeg"),
        ("sd3.5-large", "jpg", "jpeg"),
        ("sd3.5-large", "png", "png"),
    ] {
        let mut r = req(model);
        r.output_format = Some(format.into());
        assert!(
            fields(&r).contains(&("output_format", sent.to_owned())),
            "{model} {format}"
        );
    }
}

#[test]
fn an_image_comes_back_typed_by_its_bytes_with_its_seed() {
    let png = decode_base64(PNG).unwrap();
    let answer = image_response(
        "core",
        png.clone(),
        Some(FinishReason::Success),
        Some(343940597),
    )
    .unwrap();
    assert_eq!(answer.model, "core");
    assert_eq!(
        answer.images,
        [MediaOutput::Bytes {
            data: png.into(),
            mime: "image/png".into()
        }]
    );
    assert_eq!(answer.notes[0].seed, Some(343940597));
    assert!(!answer.notes[0].content_filtered);
    assert_eq!(answer.billing.units, 1);
    assert_eq!(answer.usage.units, 1);
}

#[test]
fn a_filtered_image_is_returned_flagged_and_billed() {
    let png = decode_base64(PNG).unwrap();
    let answer = image_response("ultra", png, Some(FinishReason::ContentFiltered), None).unwrap();
    assert_eq!(answer.images.len(), 1);
    assert!(answer.notes[0].content_filtered);
    assert_eq!(answer.billing.units, 1);
    assert_eq!(answer.billing.charges.len(), 1);
}

#[test]
fn bytes_that_are_no_image_or_an_unknown_finish_are_decode_errors() {
    let err = image_response("core", b"<html>".to_vec(), None, None).unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Decode);
    let png = decode_base64(PNG).unwrap();
    let err = image_response("core", png, Some(FinishReason::Other), None).unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Decode);
    assert_eq!(err.provider(), PROVIDER);
}

#[test]
fn seeds_are_read_from_numbers_and_text() {
    assert_eq!(seed(&json!(42)), Some(42));
    assert_eq!(seed(&json!(4294967294u64)), Some(4294967294));
    assert_eq!(seed(&json!(7.0)), Some(7));
    assert_eq!(seed(&json!(" 12 ")), Some(12));
    assert_eq!(seed(&json!("x")), None);
    assert_eq!(seed(&json!(null)), None);
}
