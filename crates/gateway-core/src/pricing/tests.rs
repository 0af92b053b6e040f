//! Tests of `pricing`.

use super::*;

fn parse(text: &str) -> PriceCatalog {
    PriceCatalog::from_toml(text, "ops.toml").unwrap()
}

fn parse_err(text: &str) -> String {
    PriceCatalog::from_toml(text, "ops.toml")
        .unwrap_err()
        .to_string()
}

const NONE: PriceQualifiers<'static> = PriceQualifiers::new();

/// The reference catalog: every kind of entry, with the prices the providers published.
const REFERENCE: &str = include_str!("../../testdata/pricing.toml");

fn reference() -> PriceCatalog {
    PriceCatalog::from_toml(REFERENCE, "pricing.toml").unwrap()
}

#[test]
fn reference_catalog_reads() {
    let catalog = reference();
    assert_eq!(catalog.version(), "2026-11-26");
    assert!(catalog.text_price("gemini", "gemini-2.5-flash").is_some());
    assert!(catalog.text_price("gemini", "no-such-model").is_none());
}

#[test]
fn every_reference_entry_names_its_source_and_date() {
    let file: File = toml::from_str(REFERENCE).unwrap();
    let tables = [
        ("text", file.text),
        ("unit", file.unit),
        ("credit", file.credit),
    ];
    let mut n = 0;
    for (table, entries) in tables {
        for (i, entry) in entries.iter().enumerate() {
            let source = entry.get("source").and_then(toml::Value::as_str);
            let source = source.unwrap_or_default();
            assert!(
                source.contains("read 2026-11-26"),
                "{table}[{i}]: {source:?}"
            );
            assert!(
                !source.contains("shared/"),
                "{table}[{i}] must cite the provider, not a local note: {source:?}"
            );
            n += 1;
        }
    }
    assert!(n > 30, "{n} entries");
}

#[test]
fn unit_names_round_trip() {
    for unit in PriceUnit::ALL {
        assert_eq!(PriceUnit::parse(unit.as_str()), Some(unit));
        assert_eq!(unit.to_string(), unit.as_str());
    }
    assert_eq!(PriceUnit::parse("Image"), None);
}

#[test]
fn long_context_tier_applies_above_threshold() {
    let catalog = reference();
    let usage = |input| TokenUsage {
        input_tokens: input,
        output_tokens: 1_000_000,
        ..TokenUsage::default()
    };
    // gemini-2.5-pro: $1.25 in / $10 out up to 200k prompt tokens, $2.50 / $15 above.
    let small = catalog
        .text_cost("gemini", "gemini-2.5-pro", &usage(200_000))
        .unwrap();
    assert_eq!(small.to_string(), "10.25");
    let large = catalog
        .text_cost("gemini", "gemini-2.5-pro", &usage(400_000))
        .unwrap();
    assert_eq!(large.to_string(), "16");
    // token_cost without a split is text_cost, tiers included.
    for input in [200_000, 400_000] {
        assert_eq!(
            catalog.token_cost("gemini", "gemini-2.5-pro", &usage(input), &[]),
            catalog.text_cost("gemini", "gemini-2.5-pro", &usage(input)),
        );
    }
}

#[test]
fn each_unit_kind_prices_a_quantity_exactly() {
    let mut text = String::from("version = \"t\"\n");
    let units = [
        ("input_token", "0.10", 3_000_000, "0.3"),
        ("cached_input_token", "0.025", 1_000, "0.000025"),
        ("output_token", "30", 1_290, "0.0387"),
        ("image", "0.039", 3, "0.117"),
        ("video_second", "0.02", 8, "0.16"),
        ("audio_second", "0.0015", 61, "0.0915"),
        ("character", "0.000015", 1_234, "0.01851"),
        ("search", "0.007", 3, "0.021"),
        ("search_result", "0.001", 7, "0.007"),
        ("page", "0.001", 12, "0.012"),
        ("request", "0.005", 1, "0.005"),
        ("training_step", "0.00125", 1_000, "1.25"),
    ];
    for (unit, price, _, _) in units {
        text.push_str(&format!(
            "[[unit]]\nprovider = \"p\"\nmodel = \"m\"\nunit = \"{unit}\"\nprice = \"{price}\"\n"
        ));
    }
    text.push_str("[[credit]]\nprovider = \"p\"\nprice = \"0.008\"\n");
    let catalog = parse(&text);
    for (name, _, quantity, expected) in units {
        let unit = PriceUnit::parse(name).unwrap();
        let cost = catalog.unit_cost("p", "m", unit, &NONE, quantity).unwrap();
        assert_eq!(cost.to_string(), expected, "{name}");
    }
    let credits = catalog
        .unit_cost("p", "any-model", PriceUnit::Credit, &NONE, 3)
        .unwrap();
    assert_eq!(credits.to_string(), "0.024");
    // Every kind is covered above.
    assert_eq!(units.len() + 1, PriceUnit::ALL.len());
    // unit_price is per unit, or per 1M tokens.
    assert_eq!(
        catalog
            .unit_price("p", "m", PriceUnit::OutputToken, &NONE)
            .unwrap()
            .to_string(),
        "30"
    );
    assert_eq!(
        catalog
            .unit_price("p", "m", PriceUnit::Image, &NONE)
            .unwrap()
            .to_string(),
        "0.039"
    );
}

#[test]
fn credit_prices_convert_exactly() {
    let catalog = parse(
        "version = \"t\"\n\
         [[credit]]\nprovider = \"stability\"\nprice = \"0.01\"\n\
         [[unit]]\nprovider = \"stability\"\nmodel = \"sd3.5-large\"\nunit = \"image\"\ncredits = \"6.5\"\n\
         [[unit]]\nprovider = \"serper\"\nmodel = \"search\"\nunit = \"search\"\ncredits = \"1\"\n",
    );
    let cost = |p, m, n| catalog.unit_cost(p, m, PriceUnit::Image, &NONE, n);
    assert_eq!(
        cost("stability", "sd3.5-large", 3).unwrap().to_string(),
        "0.195"
    );
    assert_eq!(
        catalog
            .unit_price("stability", "sd3.5-large", PriceUnit::Image, &NONE)
            .unwrap()
            .to_string(),
        "0.065"
    );
    // Credits without a credit price are a known count of an unknown amount: unknown.
    assert_eq!(
        catalog.unit_cost("serper", "search", PriceUnit::Search, &NONE, 1),
        None
    );
    assert_eq!(
        catalog.unit_cost("serper", "search", PriceUnit::Credit, &NONE, 1),
        None
    );
}

#[test]
fn shipped_unit_prices() {
    let catalog = reference();
    let cost = |provider, model, unit, q: PriceQualifiers<'_>, n| {
        catalog
            .unit_cost(provider, model, unit, &q, n)
            .map(|c| c.to_string())
    };
    let image = PriceUnit::Image;
    assert_eq!(
        cost("gemini", "imagen-4.0-fast-generate-001", image, NONE, 3).as_deref(),
        Some("0.06")
    );
    assert_eq!(
        cost("stability", "ultra", image, NONE, 1).as_deref(),
        Some("0.08")
    );
    assert_eq!(
        cost("stability", "sd3.5-large", image, NONE, 2).as_deref(),
        Some("0.13")
    );
    let video = "wavespeed-ai/hunyuan-video-1.5/text-to-video";
    let p720 = PriceQualifiers::new().resolution("720p");
    let p480 = PriceQualifiers::new().resolution("480P");
    let second = PriceUnit::VideoSecond;
    assert_eq!(
        cost("wavespeed", video, second, p720, 8).as_deref(),
        Some("0.32")
    );
    assert_eq!(
        cost("wavespeed", video, second, p480, 10).as_deref(),
        Some("0.2")
    );
    // No price is stated for 1080p, nor without a resolution.
    let p1080 = PriceQualifiers::new().resolution("1080p");
    assert_eq!(cost("wavespeed", video, second, p1080, 5), None);
    assert_eq!(cost("wavespeed", video, second, NONE, 5), None);
    let advanced = PriceQualifiers::new().depth("advanced");
    let basic = PriceQualifiers::new().depth("basic");
    let search = PriceUnit::Search;
    assert_eq!(
        cost("tavily", "search", search, advanced, 2).as_deref(),
        Some("0.032")
    );
    assert_eq!(
        cost("tavily", "search", search, basic, 2).as_deref(),
        Some("0.016")
    );
    let fast = PriceQualifiers::new().depth("fast");
    assert_eq!(
        cost("exa", "search", search, fast, 1).as_deref(),
        Some("0.007")
    );
    assert_eq!(
        cost("exa", "search", PriceUnit::SearchResult, fast, 5).as_deref(),
        Some("0.005")
    );
    assert_eq!(
        cost("exa", "answer", PriceUnit::Request, NONE, 2).as_deref(),
        Some("0.01")
    );
    assert_eq!(
        cost("exa", "contents", PriceUnit::Page, NONE, 10).as_deref(),
        Some("0.01")
    );
}

#[test]
fn token_rates_by_modality() {
    let catalog = reference();
    // gemini-2.0-flash: $0.10 text/image/video input, $0.70 audio input, $0.40 output.
    let usage = TokenUsage {
        input_tokens: 2_000_000,
        output_tokens: 1_000_000,
        ..TokenUsage::default()
    };
    let audio = ModalityTokens {
        modality: "AUDIO",
        input_tokens: 1_000_000,
        ..ModalityTokens::default()
    };
    let cost = catalog
        .token_cost("gemini", "gemini-2.0-flash", &usage, &[audio])
        .unwrap();
    assert_eq!(cost.to_string(), "1.2"); // 0.70 + 0.10 + 0.40
    let text = ModalityTokens {
        modality: "text",
        input_tokens: 1_000_000,
        ..ModalityTokens::default()
    };
    let cost = catalog
        .token_cost("gemini", "gemini-2.0-flash", &usage, &[audio, text])
        .unwrap();
    assert_eq!(cost.to_string(), "1.2");
    // Cached text tokens take the text cache rate; cached audio has no stated rate.
    let cached = TokenUsage {
        input_tokens: 1_000_000,
        cached_input_tokens: 1_000_000,
        ..TokenUsage::default()
    };
    let cost = catalog.token_cost("gemini", "gemini-2.5-flash", &cached, &[]);
    assert_eq!(cost.unwrap().to_string(), "0.03");
    let cached_audio = ModalityTokens {
        modality: "audio",
        input_tokens: 1_000_000,
        cached_input_tokens: 1_000_000,
        ..ModalityTokens::default()
    };
    assert_eq!(
        catalog.token_cost("gemini", "gemini-2.5-flash", &cached, &[cached_audio]),
        None
    );

    // gemini-2.5-flash-image: $0.30 input, $30 per 1M output image tokens.
    let image_call = TokenUsage {
        input_tokens: 9,
        output_tokens: 1290,
        ..TokenUsage::default()
    };
    let image = ModalityTokens {
        modality: "IMAGE",
        output_tokens: 1290,
        ..ModalityTokens::default()
    };
    let cost = catalog
        .token_cost("gemini", "gemini-2.5-flash-image", &image_call, &[image])
        .unwrap();
    assert_eq!(cost.to_string(), "0.0387027"); // 1290 × 30e-6 + 9 × 0.3e-6
    // Its text output rate is not stated: unknown, not the image rate.
    let mixed = TokenUsage {
        output_tokens: 1300,
        ..image_call
    };
    assert_eq!(
        catalog.token_cost("gemini", "gemini-2.5-flash-image", &mixed, &[image]),
        None
    );

    // TTS: text in, audio out, each at its own rate.
    let tts = TokenUsage {
        input_tokens: 1_000_000,
        output_tokens: 1_000_000,
        ..TokenUsage::default()
    };
    let parts = [
        ModalityTokens {
            modality: "text",
            input_tokens: 1_000_000,
            ..ModalityTokens::default()
        },
        ModalityTokens {
            modality: "audio",
            output_tokens: 1_000_000,
            ..ModalityTokens::default()
        },
    ];
    let cost = catalog.token_cost("gemini", "gemini-2.5-flash-preview-tts", &tts, &parts);
    assert_eq!(cost.unwrap().to_string(), "10.5");
    assert_eq!(
        catalog.token_cost("gemini", "gemini-2.5-flash-preview-tts", &tts, &[]),
        None
    );

    // An embedding model priced only by an input_token entry.
    let embed = TokenUsage {
        input_tokens: 2_000_000,
        ..TokenUsage::default()
    };
    let cost = catalog.token_cost("gemini", "gemini-embedding-001", &embed, &[]);
    assert_eq!(cost.unwrap().to_string(), "0.3");
    assert_eq!(
        catalog.token_cost("gemini", "no-such-model", &embed, &[]),
        None
    );
}

#[test]
fn qualified_price_wins_over_unqualified() {
    let catalog = parse(
        "version = \"t\"\n\
         [[unit]]\nprovider = \"p\"\nmodel = \"m\"\nunit = \"image\"\nprice = \"0.04\"\n\
         [[unit]]\nprovider = \"p\"\nmodel = \"m\"\nunit = \"image\"\nsize = \"1024x1024\"\nprice = \"0.05\"\n\
         [[unit]]\nprovider = \"p\"\nmodel = \"m\"\nunit = \"image\"\nsize = \"1024x1024\"\nquality = \"hd\"\nprice = \"0.08\"\n\
         [[unit]]\nprovider = \"p\"\nmodel = \"m\"\nunit = \"image\"\nsize = \"1024x1792\"\nprice = \"0.07\"\n\
         [[unit]]\nprovider = \"p\"\nmodel = \"m\"\nunit = \"image\"\nquality = \"hd\"\nprice = \"0.09\"\n",
    );
    let price = |q: PriceQualifiers<'_>| {
        catalog
            .unit_cost("p", "m", PriceUnit::Image, &q, 1)
            .map(|c| c.to_string())
    };
    let q = PriceQualifiers::new;
    assert_eq!(price(q()).as_deref(), Some("0.04"));
    assert_eq!(price(q().size("1024x1024")).as_deref(), Some("0.05"));
    assert_eq!(
        price(q().size("1024X1024").quality("HD")).as_deref(),
        Some("0.08")
    );
    assert_eq!(price(q().size("1024x1792")).as_deref(), Some("0.07"));
    assert_eq!(price(q().size("512x512")).as_deref(), Some("0.04"));
    assert_eq!(price(q().quality("hd")).as_deref(), Some("0.09"));
    // A qualifier no entry mentions does not matter.
    assert_eq!(price(q().depth("deep")).as_deref(), Some("0.04"));
    // 1024x1792 and hd are equally specific and disagree: the price is unknown.
    assert_eq!(price(q().size("1024x1792").quality("hd")), None);

    // Without an unqualified entry, a request lacking the qualifier is unknown.
    let only_qualified = parse(
        "version = \"t\"\n\
         [[unit]]\nprovider = \"p\"\nmodel = \"m\"\nunit = \"search\"\ndepth = \"basic\"\nprice = \"0.008\"\n",
    );
    let search =
        |q: PriceQualifiers<'_>| only_qualified.unit_cost("p", "m", PriceUnit::Search, &q, 1);
    assert_eq!(search(q().depth("basic")).unwrap().to_string(), "0.008");
    assert_eq!(search(q()), None);
    assert_eq!(search(q().depth("advanced")), None);
}

#[test]
fn unknown_model_or_unit_is_none() {
    let catalog = reference();
    let cost = |provider, model, unit| catalog.unit_cost(provider, model, unit, &NONE, 1);
    assert_eq!(cost("gemini", "no-such-model", PriceUnit::Image), None);
    assert_eq!(cost("no-such-provider", "search", PriceUnit::Search), None);
    assert_eq!(
        cost("gemini", "imagen-4.0-generate-001", PriceUnit::VideoSecond),
        None
    );
    assert_eq!(cost("gemini", "gemini-2.0-flash", PriceUnit::Image), None);
    // Text rates are not unit prices.
    assert_eq!(
        cost("gemini", "gemini-2.0-flash", PriceUnit::InputToken),
        None
    );
    // Exa deep search has a price range, not a price; Serper has no USD per credit.
    let deep = PriceQualifiers::new().depth("deep");
    assert_eq!(
        catalog.unit_cost("exa", "search", PriceUnit::Search, &deep, 1),
        None
    );
    assert_eq!(cost("exa", "search", PriceUnit::Search), None);
    assert_eq!(cost("serper", "search", PriceUnit::Search), None);
    assert_eq!(cost("serper", "search", PriceUnit::Credit), None);
    assert_eq!(cost("huggingface", "anything", PriceUnit::Image), None);
}

#[test]
fn bad_price_names_file_and_field() {
    let err = PriceCatalog::from_toml(
        "version = \"x\"\n[[text]]\nprovider = \"p\"\nmodel = \"m\"\ninput = \"-1\"\noutput = \"1\"\n",
        "ops.toml",
    )
    .unwrap_err();
    assert!(err.to_string().contains("ops.toml: text[0].input"), "{err}");
    assert_eq!(err.kind(), &ErrorKind::Config);
}

#[test]
fn bad_entries_name_file_and_field() {
    let unit = |body: &str| {
        format!(
            "version = \"x\"\n\
             [[unit]]\nprovider = \"p\"\nmodel = \"ok\"\nunit = \"image\"\nprice = \"1\"\n\
             [[unit]]\nprovider = \"p\"\nmodel = \"m\"\n{body}\n"
        )
    };
    let cases = [
        (unit("unit = \"image\"\nprice = \"0.0x\""), "ops.toml: unit[1].price: `0.0x`"),
        (unit("unit = \"image\"\nprice = \"1.0000000001\""), "ops.toml: unit[1].price"),
        (unit("unit = \"imagez\"\nprice = \"1\""), "ops.toml: unit[1].unit: unknown unit `imagez`"),
        (unit("unit = \"credit\"\nprice = \"1\""), "ops.toml: unit[1].unit: the price of a credit"),
        (unit("unit = \"image\"\nprice = \"1\"\ncredits = \"2\""), "ops.toml: unit[1].price: give either"),
        (unit("unit = \"image\""), "ops.toml: unit[1].price: missing"),
        (unit("unit = \"image\"\ncredits = \"-2\""), "ops.toml: unit[1].credits: `-2`"),
        (unit("unit = \"image\"\nprice = \"1\"\nsize = \" \""), "ops.toml: unit[1].size: must not be empty"),
        (
            "version = \"x\"\n[[unit]]\nprovider = \"\"\nmodel = \"m\"\nunit = \"image\"\nprice = \"1\"\n".into(),
            "ops.toml: unit[0].provider: must not be empty",
        ),
        (
            "version = \"x\"\n[[unit]]\nprovider = \"p\"\nmodel = \"ok\"\nunit = \"image\"\nprice = \"1\"\nsize = \"A\"\n\
             [[unit]]\nprovider = \"p\"\nmodel = \"ok\"\nunit = \"image\"\nprice = \"2\"\nsize = \"a\"\n".into(),
            "ops.toml: unit[1]: same provider, model, unit and qualifiers as unit[0]",
        ),
        (
            "version = \"x\"\n[[credit]]\nprovider = \"p\"\nprice = \"$1\"\n".into(),
            "ops.toml: credit[0].price",
        ),
        (
            "version = \"x\"\n[[credit]]\nprovider = \"p\"\nprice = \"1\"\n[[credit]]\nprovider = \"p\"\nprice = \"2\"\n".into(),
            "ops.toml: credit[1]: same provider as credit[0]",
        ),
        (
            "version = \"x\"\n[[text]]\nprovider = \"p\"\nmodel = \"m\"\ninput = \"1\"\noutput = \"1\"\n\
             [[text]]\nprovider = \"p\"\nmodel = \"m\"\ninput = \"2\"\noutput = \"2\"\n".into(),
            "ops.toml: text[1]: same provider and model as text[0]",
        ),
        (
            "version = \"x\"\n[[text]]\nprovider = \"p\"\nmodel = \"m\"\ninput = \"1\"\noutput = \"1\"\n\
             long_context = { above_tokens = 5, input = \"2\", output = \"x\" }\n".into(),
            "ops.toml: text[0].long_context.output",
        ),
    ];
    for (text, expected) in cases {
        let err = parse_err(&text);
        assert!(err.contains(expected), "{expected:?} not in {err:?}");
    }
    // Errors of structure also name the entry, and a value of the wrong type its field.
    let structural = [
        (unit("unit = \"image\"\nprice = \"1\"\nqualty = \"hd\""), "ops.toml: unit[1]: unknown field `qualty`, expected one of"),
        (unit("price = \"1\""), "ops.toml: unit[1]: missing field `unit`"),
        (unit("unit = \"image\"\nprice = 0.04"), "ops.toml: unit[1].price: expected a string, found float (amounts are decimal strings"),
        (unit("unit = \"image\"\nprice = \"1\"\nsize = 1024"), "ops.toml: unit[1].size: expected a string, found integer"),
        (
            "version = \"x\"\n[[text]]\nprovider = \"p\"\nmodel = \"m\"\ninput = \"1\"\noutput = \"1\"\n\
             long_context = { above_tokens = 5, input = 2.5, output = \"3\" }\n".into(),
            "ops.toml: text[0].long_context.input: expected a string, found float",
        ),
        (
            "version = \"x\"\n[[credit]]\nprovider = \"p\"\nprice = \"1\"\nmodel = \"m\"\n".into(),
            "ops.toml: credit[0]: unknown field `model`",
        ),
    ];
    for (text, expected) in structural {
        let err = parse_err(&text);
        assert!(err.contains(expected), "{expected:?} not in {err:?}");
    }
    // And a mistyped table name, with its line.
    let err = parse_err("version = \"x\"\n[[units]]\nprovider = \"p\"\n");
    assert!(
        err.starts_with("ops.toml: ") && err.contains("units"),
        "{err}"
    );
}

#[test]
fn version_is_required() {
    let err = parse_err("[[credit]]\nprovider = \"p\"\nprice = \"1\"\n");
    assert!(
        err.starts_with("ops.toml: ") && err.contains("version"),
        "{err}"
    );
    let err = parse_err("version = \" \"\n");
    assert!(
        err.contains("ops.toml: version: must not be empty"),
        "{err}"
    );
}

#[test]
fn overrides_win() {
    let mut catalog = reference();
    let ops = PriceCatalog::from_toml(
        "version = \"ops-1\"\n[[text]]\nprovider = \"gemini\"\nmodel = \"gemini-2.0-flash\"\ninput = \"1\"\noutput = \"1\"\n",
        "ops.toml",
    )
    .unwrap();
    catalog.merge(ops);
    assert_eq!(catalog.version(), "ops-1");
    assert_eq!(catalog.version_of("gemini"), "ops-1");
    assert_eq!(catalog.version_of("stability"), "2026-11-26");
    let usage = TokenUsage {
        input_tokens: 1_000_000,
        ..TokenUsage::default()
    };
    assert_eq!(
        catalog
            .text_cost("gemini", "gemini-2.0-flash", &usage)
            .unwrap()
            .to_string(),
        "1"
    );
}

#[test]
fn token_units_merged_in_reprice_a_text_model() {
    // A model with text rates only, then an operator's file adds an audio input rate.
    let mut catalog = parse(
        "version = \"v1\"\n\
         [[text]]\nprovider = \"hf\"\nmodel = \"m\"\ninput = \"0.10\"\noutput = \"0.40\"\n",
    );
    let usage = TokenUsage {
        input_tokens: 2_000_000,
        ..TokenUsage::default()
    };
    let audio = ModalityTokens {
        modality: "audio",
        input_tokens: 1_000_000,
        ..ModalityTokens::default()
    };
    let cost = |catalog: &PriceCatalog| {
        catalog
            .token_cost("hf", "m", &usage, &[audio])
            .map(|c| c.to_string())
    };
    assert_eq!(cost(&catalog).as_deref(), Some("0.2"));
    catalog.merge(parse(
        "version = \"v2\"\n\
         [[unit]]\nprovider = \"hf\"\nmodel = \"m\"\n\
         unit = \"input_token\"\nmodality = \"audio\"\nprice = \"0.30\"\n",
    ));
    assert_eq!(cost(&catalog).as_deref(), Some("0.4")); // 0.30 + 0.10
}

#[test]
fn overrides_win_for_unit_and_credit_prices() {
    let mut catalog = reference();
    catalog.merge(parse(
        "version = \"ops-2\"\n\
         [[unit]]\nprovider = \"wavespeed\"\nmodel = \"wavespeed-ai/hunyuan-video-1.5/text-to-video\"\n\
         unit = \"video_second\"\nresolution = \"720p\"\nprice = \"0.05\"\n\
         [[unit]]\nprovider = \"wavespeed\"\nmodel = \"wavespeed-ai/flux-dev\"\nunit = \"image\"\nprice = \"0.025\"\n\
         [[credit]]\nprovider = \"tavily\"\nprice = \"0.005\"\n\
         [[credit]]\nprovider = \"serper\"\nprice = \"0.001\"\n",
    ));
    assert_eq!(catalog.version(), "ops-2");
    let cost = |provider, model, unit, q: PriceQualifiers<'_>, n| {
        catalog
            .unit_cost(provider, model, unit, &q, n)
            .map(|c| c.to_string())
    };
    let video = "wavespeed-ai/hunyuan-video-1.5/text-to-video";
    let q = PriceQualifiers::new;
    let second = PriceUnit::VideoSecond;
    // The overridden resolution changes; the other keeps its shipped price.
    assert_eq!(
        cost("wavespeed", video, second, q().resolution("720p"), 2).as_deref(),
        Some("0.1")
    );
    assert_eq!(
        cost("wavespeed", video, second, q().resolution("480p"), 2).as_deref(),
        Some("0.04")
    );
    // New models are added.
    let image = PriceUnit::Image;
    assert_eq!(
        cost("wavespeed", "wavespeed-ai/flux-dev", image, NONE, 2).as_deref(),
        Some("0.05")
    );
    // A new credit price reprices every entry given in credits.
    let search = PriceUnit::Search;
    assert_eq!(
        cost("tavily", "search", search, q().depth("advanced"), 1).as_deref(),
        Some("0.01")
    );
    assert_eq!(
        cost("serper", "search", search, NONE, 3).as_deref(),
        Some("0.003")
    );
    // Shipped prices nobody overrode stay.
    assert_eq!(
        cost("stability", "core", image, NONE, 1).as_deref(),
        Some("0.03")
    );
    assert!(catalog.text_price("gemini", "gemini-2.5-pro").is_some());
}
