use gateway_core::{EditKind, ErrorKind, ImageEditRequest, ImageFormat, ImageRequest, MediaInput};
use serde_json::{Value, json};

use super::*;

const PNG_1X1: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";

fn png() -> MediaInput {
    MediaInput::bytes(gateway_core::decode_base64(PNG_1X1).unwrap(), "image/png")
}

fn url(u: &str) -> MediaInput {
    MediaInput::Url(u.into())
}

fn gen_req(model: &str) -> ImageRequest {
    ImageRequest::new(model, "A lighthouse at dusk")
}

fn edit_req(model: &str, images: Vec<MediaInput>) -> ImageEditRequest {
    ImageEditRequest::new(model, images)
}

/// The param and kind of a refusal.
fn refused(r: Result<()>) -> (String, ErrorKind) {
    let e = r.expect_err("must be refused");
    (e.param().unwrap_or_default().to_owned(), e.kind().clone())
}

#[test]
fn sizes_parse_and_map_to_wavespeeds_form() {
    assert_eq!(parse_size("1024x768").unwrap(), (1024, 768));
    assert_eq!(parse_size(" 512X512 ").unwrap(), (512, 512));
    assert_eq!(parse_size("640*480").unwrap(), (640, 480));
    for bad in ["", "1024", "x", "0x10", "axb", "10x-1", "1024x"] {
        let e = parse_size(bad).unwrap_err();
        assert_eq!(e.param(), Some("size"), "{bad}");
    }
    let mut req = gen_req("wavespeed-ai/flux-dev");
    req.size = Some("1024x768".into());
    let body = generation_input(&req, false).unwrap();
    assert_eq!(body["size"], json!("1024*768"));
}

#[test]
fn flux_dev_generation_body() {
    let mut req = gen_req("wavespeed-ai/flux-dev");
    req.n = Some(2);
    req.seed = Some(42);
    req.output_format = Some("jpg".into());
    req.options.insert("guidance_scale".into(), json!(3.5));
    check_generation(&req).unwrap();
    let body = generation_input(&req, true).unwrap();
    assert_eq!(
        Value::Object(body),
        json!({
            "prompt": "A lighthouse at dusk",
            "num_images": 2,
            "seed": 42,
            "output_format": "jpeg",
            "guidance_scale": 3.5,
            "enable_sync_mode": true
        })
    );
}

#[test]
fn b64_json_asks_for_base64_only_where_documented() {
    let mut req = gen_req("wavespeed-ai/flux-schnell");
    req.response_format = Some(ImageFormat::B64Json);
    let body = generation_input(&req, false).unwrap();
    assert_eq!(body["enable_base64_output"], json!(true));
    let mut req = gen_req("bytedance/seedream-v4.5");
    req.response_format = Some(ImageFormat::B64Json);
    let body = generation_input(&req, true).unwrap();
    assert!(body.get("enable_base64_output").is_none());
    // Nor sync mode, which seedream's documentation does not offer.
    assert!(body.get("enable_sync_mode").is_none());
    req.response_format = Some(ImageFormat::Url);
    let body = generation_input(&gen_req("wavespeed-ai/flux-dev"), false).unwrap();
    assert!(body.get("enable_base64_output").is_none() && body.get("num_images").is_none());
}

#[test]
fn generation_checks_name_the_field() {
    let with = |f: &dyn Fn(&mut ImageRequest), model: &str| {
        let mut r = gen_req(model);
        f(&mut r);
        refused(check_generation(&r))
    };
    use ErrorKind::*;
    let flux = "wavespeed-ai/flux-dev";
    type Case = (
        Box<dyn Fn(&mut ImageRequest)>,
        &'static str,
        &'static str,
        ErrorKind,
    );
    let cases: Vec<Case> = vec![
        (
            Box::new(|r| r.size = Some("2048x2048".into())),
            flux,
            "size",
            Unsupported,
        ),
        (
            Box::new(|r| r.size = Some("256x1024".into())),
            flux,
            "size",
            Unsupported,
        ),
        (
            Box::new(|r| r.size = Some("big".into())),
            flux,
            "size",
            InvalidRequest,
        ),
        (Box::new(|r| r.n = Some(5)), flux, "n", Unsupported),
        (Box::new(|r| r.n = Some(0)), flux, "n", InvalidRequest),
        (
            Box::new(|r| r.n = Some(2)),
            "bytedance/seedream-v4.5",
            "n",
            Unsupported,
        ),
        (
            Box::new(|r| r.seed = Some(1)),
            "bytedance/seedream-v4.5",
            "seed",
            Unsupported,
        ),
        (
            Box::new(|r| r.output_format = Some("webp".into())),
            flux,
            "output_format",
            Unsupported,
        ),
        (
            Box::new(|r| r.aspect_ratio = Some("16:9".into())),
            flux,
            "aspect_ratio",
            Unsupported,
        ),
        (
            Box::new(|r| r.negative_prompt = Some("blur".into())),
            flux,
            "negative_prompt",
            Unsupported,
        ),
        (
            Box::new(|r| {
                r.options.insert("lora_scale".into(), json!(1));
            }),
            flux,
            "options.lora_scale",
            InvalidRequest,
        ),
        (
            Box::new(|r| {
                r.options.insert("enable_sync_mode".into(), json!(true));
            }),
            "someone/new-model",
            "options.enable_sync_mode",
            InvalidRequest,
        ),
        (
            Box::new(|r| r.prompt = " ".into()),
            flux,
            "prompt",
            InvalidRequest,
        ),
        (
            Box::new(|_| {}),
            "wavespeed-ai/image-background-remover",
            "model",
            Unsupported,
        ),
        (
            Box::new(|_| {}),
            "wavespeed-ai/../x",
            "model",
            InvalidRequest,
        ),
    ];
    for (i, (f, model, param, kind)) in cases.into_iter().enumerate() {
        assert_eq!(with(&*f, model), (param.to_owned(), kind), "case {i}");
    }
    // Within its range, any size; an unknown model takes anything.
    let mut ok = gen_req(flux);
    ok.size = Some("1536x512".into());
    ok.n = Some(4);
    check_generation(&ok).unwrap();
    let mut any = gen_req("someone/new-model");
    any.size = Some("4096x4096".into());
    any.n = Some(8);
    any.aspect_ratio = Some("16:9".into());
    any.options.insert("steps".into(), json!(4));
    check_generation(&any).unwrap();
}

#[test]
fn an_unknown_model_gets_the_generic_mapping() {
    let mut req = gen_req("someone/new-model");
    req.n = Some(3);
    req.aspect_ratio = Some("16:9".into());
    req.negative_prompt = Some("blur".into());
    req.response_format = Some(ImageFormat::B64Json);
    req.options.insert("steps".into(), json!(4));
    let body = generation_input(&req, true).unwrap();
    assert_eq!(
        Value::Object(body),
        json!({
            "prompt": "A lighthouse at dusk",
            "num_images": 3,
            "aspect_ratio": "16:9",
            "negative_prompt": "blur",
            "steps": 4
        })
    );
    let edit = edit_req(
        "someone/new-edit",
        vec![url("https://x.test/a.png"), url("https://x.test/b.png")],
    );
    check_edit(&edit).unwrap();
    let body = edit_input(&edit, false).unwrap();
    assert_eq!(
        body["images"],
        json!(["https://x.test/a.png", "https://x.test/b.png"])
    );
    let swap = edit_req(
        "someone/new-swap",
        vec![url("https://x.test/a.png"), url("https://x.test/b.png")],
    )
    .kind(EditKind::FaceSwap);
    let body = edit_input(&swap, false).unwrap();
    assert_eq!(body["image"], json!("https://x.test/a.png"));
    assert_eq!(body["face_image"], json!("https://x.test/b.png"));
}

#[test]
fn inpainting_on_flux_dev_and_erasing() {
    let mut req = edit_req("wavespeed-ai/flux-dev", vec![png()]);
    req.mask = Some(png());
    req.prompt = "a red door".into();
    check_edit(&req).unwrap();
    let body = edit_input(&req, false).unwrap();
    let data_url = format!("data:image/png;base64,{PNG_1X1}");
    assert_eq!(body["image"], json!(data_url));
    assert_eq!(body["mask_image"], json!(data_url));
    assert_eq!(body["prompt"], json!("a red door"));

    // flux-v1-pro/erase: the mask is required; its prompt-less input drops the prompt.
    let mut erase = edit_req(
        "wavespeed-ai/flux-v1-pro/erase",
        vec![url("https://x.test/a.png")],
    );
    erase.prompt = "remove the car".into();
    assert_eq!(
        refused(check_edit(&erase)),
        ("mask".to_owned(), ErrorKind::InvalidRequest)
    );
    erase.mask = Some(url("https://x.test/m.png"));
    check_edit(&erase).unwrap();
    let body = edit_input(&erase, false).unwrap();
    assert_eq!(
        Value::Object(body),
        json!({"image": "https://x.test/a.png", "mask_image": "https://x.test/m.png"})
    );

    // The image eraser takes a mask or a prompt naming what to erase.
    let mut eraser = edit_req(
        "wavespeed-ai/image-eraser",
        vec![url("https://x.test/a.png")],
    );
    assert_eq!(refused(check_edit(&eraser)).0, "mask");
    eraser.prompt = "the dog".into();
    check_edit(&eraser).unwrap();
    eraser.response_format = Some(ImageFormat::B64Json);
    let body = edit_input(&eraser, true).unwrap();
    assert_eq!(
        Value::Object(body),
        json!({
            "image": "https://x.test/a.png",
            "prompt": "the dog",
            "enable_base64_output": true,
            "enable_sync_mode": true
        })
    );
}

#[test]
fn edit_kinds_come_from_the_model() {
    let bg = edit_req(
        "wavespeed-ai/image-background-remover",
        vec![url("https://x.test/a.png")],
    );
    assert_eq!(edit_kind(&bg).unwrap(), EditKind::RemoveBackground);
    check_edit(&bg).unwrap();
    let mut with_prompt = bg.clone();
    with_prompt.prompt = "remove the background".into();
    let body = edit_input(&with_prompt, false).unwrap();
    assert_eq!(
        Value::Object(body),
        json!({"image": "https://x.test/a.png"})
    );
    assert_eq!(
        edit_kind(&bg.clone().kind(EditKind::RemoveBackground)).unwrap(),
        EditKind::RemoveBackground
    );
    assert_eq!(
        refused(check_edit(&bg.kind(EditKind::FaceSwap))),
        ("edit".to_owned(), ErrorKind::Unsupported)
    );
    let inpaint_on_bg = edit_req(
        "wavespeed-ai/image-background-remover",
        vec![url("https://x.test/a.png")],
    )
    .kind(EditKind::Edit);
    assert_eq!(refused(check_edit(&inpaint_on_bg)).0, "edit");
}

#[test]
fn face_swap_takes_exactly_two_images() {
    let two = edit_req(
        "wavespeed-ai/image-face-swap",
        vec![url("https://x.test/target.jpg"), png()],
    );
    check_edit(&two).unwrap();
    let body = edit_input(&two, false).unwrap();
    assert_eq!(body["image"], json!("https://x.test/target.jpg"));
    assert_eq!(
        body["face_image"],
        json!(format!("data:image/png;base64,{PNG_1X1}"))
    );
    for images in [vec![png()], vec![png(), png(), png()]] {
        let req = edit_req("wavespeed-ai/image-face-swap", images);
        assert_eq!(
            refused(check_edit(&req)),
            ("image".to_owned(), ErrorKind::InvalidRequest)
        );
    }
    let mut with_mask = two.clone();
    with_mask.mask = Some(png());
    assert_eq!(refused(check_edit(&with_mask)).0, "mask");
}

#[test]
fn other_edit_refusals() {
    use ErrorKind::*;
    // A generation-only model.
    let req = edit_req("wavespeed-ai/flux-schnell", vec![png()]);
    assert_eq!(refused(check_edit(&req)), ("model".to_owned(), Unsupported));
    // No image, two images on a one-image model, a URL that is no URL.
    let mut none = edit_req("wavespeed-ai/flux-dev", vec![]);
    none.prompt = "x".into();
    assert_eq!(refused(check_edit(&none)).0, "image");
    let mut two = edit_req("wavespeed-ai/flux-dev", vec![png(), png()]);
    two.prompt = "x".into();
    assert_eq!(refused(check_edit(&two)), ("image".to_owned(), Unsupported));
    let mut file = edit_req("wavespeed-ai/flux-dev", vec![url("file:///etc/passwd")]);
    file.prompt = "x".into();
    assert_eq!(
        refused(check_edit(&file)),
        ("image".to_owned(), InvalidRequest)
    );
    // A prompt edit needs its prompt; seedream's edit takes up to 10 images and no mask.
    let seedream = edit_req("bytedance/seedream-v4.5/edit", vec![png()]);
    assert_eq!(refused(check_edit(&seedream)).0, "prompt");
    let mut many = edit_req("bytedance/seedream-v4.5/edit", vec![png(); 11]);
    many.prompt = "x".into();
    assert_eq!(refused(check_edit(&many)).0, "image");
    let mut masked = edit_req("bytedance/seedream-v4.5/edit", vec![png()]);
    masked.prompt = "x".into();
    masked.mask = Some(png());
    assert_eq!(refused(check_edit(&masked)).0, "mask");
    let mut ok = edit_req("bytedance/seedream-v4.5/edit", vec![png(), png()]);
    ok.prompt = "warm light".into();
    ok.size = Some("2048x2048".into());
    check_edit(&ok).unwrap();
    let body = edit_input(&ok, false).unwrap();
    assert_eq!(body["images"].as_array().unwrap().len(), 2);
    assert_eq!(body["size"], json!("2048*2048"));
}

#[test]
fn outputs_are_urls_or_bytes() {
    let png_bytes = gateway_core::decode_base64(PNG_1X1).unwrap();
    let got = outputs(&[
        json!("https://d1q70pf5vjeyhc.cloudfront.net/predictions/x/0.jpeg"),
        json!(PNG_1X1),
        json!(format!("data:image/png;base64,{PNG_1X1}")),
    ])
    .unwrap();
    assert_eq!(
        got,
        [
            Output::Url("https://d1q70pf5vjeyhc.cloudfront.net/predictions/x/0.jpeg".into()),
            Output::Bytes(png_bytes.clone()),
            Output::Bytes(png_bytes),
        ]
    );
    for bad in [json!({"url": "x"}), json!("not base64!"), json!("")] {
        let e = outputs(std::slice::from_ref(&bad)).unwrap_err();
        assert_eq!(e.kind(), &ErrorKind::Decode, "{bad}");
    }
}

fn with_loras(model: &str, loras: Value) -> ImageRequest {
    let mut req = gen_req(model);
    req.options.insert("loras".into(), loras);
    req
}

#[test]
fn loras_are_passed_on_to_the_lora_models() {
    let loras = json!([
        {"path": "https://files.example.com/lora.safetensors", "scale": 1.0},
        {"path": "strangerzonehf/Flux-Super-Realism-LoRA", "scale": 0.5},
        {"path": "owner/name"},
    ]);
    let mut req = with_loras("wavespeed-ai/flux-dev-lora", loras.clone());
    req.size = Some("1024x1024".into());
    req.n = Some(2);
    check_generation(&req).unwrap();
    assert_eq!(
        Value::Object(generation_input(&req, false).unwrap()),
        json!({"prompt": "A lighthouse at dusk", "size": "1024*1024", "num_images": 2,
               "loras": loras})
    );
    // The qwen and z-image LoRA models make one image a task: no `num_images`.
    for model in [
        "wavespeed-ai/qwen-image/text-to-image-lora",
        "wavespeed-ai/z-image/turbo-lora",
    ] {
        let loras = json!([{"path": "https://x.example/a.safetensors", "scale": 4}]);
        let mut req = with_loras(model, loras.clone());
        req.n = Some(1);
        check_generation(&req).unwrap();
        assert_eq!(
            Value::Object(generation_input(&req, false).unwrap()),
            json!({"prompt": "A lighthouse at dusk", "loras": loras}),
            "{model}"
        );
    }
    // An edit on flux-dev-lora takes them too.
    let mut edit = edit_req(
        "wavespeed-ai/flux-dev-lora",
        vec![url("https://x.example/a.png")],
    );
    edit.prompt = "in the style".into();
    edit.options
        .insert("loras".into(), json!([{"path": "a/b", "scale": 0}]));
    check_edit(&edit).unwrap();
    assert_eq!(
        edit_input(&edit, false).unwrap()["loras"],
        json!([{"path": "a/b", "scale": 0}])
    );
}

#[test]
fn bad_loras_are_refused_naming_the_entry() {
    let flux = "wavespeed-ai/flux-dev-lora";
    let ok = json!({"path": "https://x.example/a.safetensors", "scale": 1});
    let cases = [
        (
            json!({"path": "a/b"}),
            "options.loras",
            ErrorKind::InvalidRequest,
        ),
        (
            json!([ok, ok, ok, ok, ok]),
            "options.loras",
            ErrorKind::Unsupported,
        ),
        (
            json!([ok, "a/b"]),
            "options.loras[1]",
            ErrorKind::InvalidRequest,
        ),
        (
            json!([ok, {"path": "a/b", "scale": 4.5}]),
            "options.loras[1].scale",
            ErrorKind::InvalidRequest,
        ),
        (
            json!([{"path": "a/b", "scale": -0.1}]),
            "options.loras[0].scale",
            ErrorKind::InvalidRequest,
        ),
        (
            json!([{"path": "a/b", "scale": "1"}]),
            "options.loras[0].scale",
            ErrorKind::InvalidRequest,
        ),
        (
            json!([{"scale": 1}]),
            "options.loras[0].path",
            ErrorKind::InvalidRequest,
        ),
        (
            json!([{"path": 3}]),
            "options.loras[0].path",
            ErrorKind::InvalidRequest,
        ),
        (
            json!([{"path": "ftp://x.example/a.safetensors"}]),
            "options.loras[0].path",
            ErrorKind::InvalidRequest,
        ),
        (
            json!([{"path": "http://"}]),
            "options.loras[0].path",
            ErrorKind::InvalidRequest,
        ),
        (
            json!([{"path": "a/b/c"}]),
            "options.loras[0].path",
            ErrorKind::InvalidRequest,
        ),
        (
            json!([{"path": "../b"}]),
            "options.loras[0].path",
            ErrorKind::InvalidRequest,
        ),
        (
            json!([{"path": "a/b c"}]),
            "options.loras[0].path",
            ErrorKind::InvalidRequest,
        ),
        (
            json!([{"path": "justaname"}]),
            "options.loras[0].path",
            ErrorKind::InvalidRequest,
        ),
        (
            json!([{"path": "a/b", "weight": 1}]),
            "options.loras[0].weight",
            ErrorKind::InvalidRequest,
        ),
    ];
    for (loras, param, kind) in cases {
        assert_eq!(
            refused(check_generation(&with_loras(flux, loras.clone()))),
            (param.to_owned(), kind),
            "{loras}"
        );
    }
    // Three is the limit of the qwen and z-image LoRA models.
    for model in [
        "wavespeed-ai/qwen-image/text-to-image-lora",
        "wavespeed-ai/z-image/turbo-lora",
    ] {
        let four = json!([{"path": "a/b"}, {"path": "a/c"}, {"path": "a/d"}, {"path": "a/e"}]);
        assert_eq!(
            refused(check_generation(&with_loras(model, four))),
            ("options.loras".to_owned(), ErrorKind::Unsupported),
            "{model}"
        );
    }
    // A model without LoRAs has no such option.
    assert_eq!(
        refused(check_generation(&with_loras(
            "wavespeed-ai/flux-dev",
            json!([{"path": "a/b"}])
        ))),
        ("options.loras".to_owned(), ErrorKind::InvalidRequest)
    );
}
