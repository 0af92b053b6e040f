//! The prices this crate ships: every Hugging Face model the gateway's own files name (the
//! shipped config, the README, the examples) has one, so that plans which refuse unpriced models
//! (Free, Basic and Pro in `crates/gw-store/plans.toml`) can use them.

use super::*;
use gateway_core::{PriceQualifiers, PriceUnit, TokenPrice, TokenUsage};

fn catalog() -> PriceCatalog {
    PriceCatalog::from_toml(PRICES, "pricing.toml").unwrap()
}

/// A file of the workspace, read at test time so that a model added to it is checked at once.
fn workspace_file(path: &str) -> String {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    std::fs::read_to_string(format!("{root}/{path}")).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every `hf/<owner>/<name>[:backend]` in `text`, without the `hf/`. Placeholders such as
/// `hf/<model>` or `hf/*` are not model ids and are skipped.
fn hf_models_named_in(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (at, _) in text.match_indices("hf/") {
        // `hf/` inside a longer word (`gw-hf/pricing.toml`) is not a model name.
        let before = text[..at].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            continue;
        }
        let rest = &text[at + 3..];
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || "._-:/".contains(c)))
            .unwrap_or(rest.len());
        let id = rest[..end].trim_end_matches(['.', ':']);
        let mut parts = id.split('/');
        let (Some(owner), Some(name), None) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if !owner.is_empty() && !name.is_empty() && !name.starts_with(':') {
            found.push(id.to_owned());
        }
    }
    found
}

/// The model ids of `[providers.hf] models` in a gateway config: plain strings and the `id` of
/// tables (`{ id = "...", serves = [...] }`); service names have no `/`, model ids do.
fn hf_models_configured_in(config: &str) -> Vec<String> {
    let config = format!("\n{config}");
    let section = config
        .split("\n[")
        .find(|s| s.starts_with("providers.hf]"))
        .expect("the config has a [providers.hf] section");
    let list = &section[section.find("models").expect("[providers.hf] lists models")..];
    list.split('"')
        .skip(1)
        .step_by(2)
        .filter(|s| s.contains('/'))
        .map(str::to_owned)
        .collect()
}

/// Every Hugging Face model the README, the shipped config and the examples name, with where.
fn shipped_models() -> Vec<(String, String)> {
    let mut models = Vec::new();
    for path in ["README.md", "crates/gw-server/gateway.toml"] {
        for model in hf_models_named_in(&workspace_file(path)) {
            models.push((model, path.to_owned()));
        }
    }
    for model in hf_models_configured_in(&workspace_file("crates/gw-server/gateway.toml")) {
        models.push((
            model,
            "crates/gw-server/gateway.toml [providers.hf]".to_owned(),
        ));
    }
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples");
    let mut paths: Vec<_> = std::fs::read_dir(examples)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    for path in paths {
        let text = std::fs::read_to_string(&path).unwrap();
        for model in hf_models_named_in(&text) {
            models.push((model, path.display().to_string()));
        }
    }
    models
}

/// Whether `model` has a price of the kind a request for it is charged by: tokens for a chat
/// model, an image for an image model (at the size every fal-priced model has, 1024x1024).
fn priced(catalog: &PriceCatalog, model: &str) -> bool {
    let square = PriceQualifiers::new().size("1024x1024");
    catalog.text_price(PROVIDER, model).is_some()
        || catalog
            .unit_price(PROVIDER, model, PriceUnit::Image, &square)
            .is_some()
}

#[test]
fn the_scanner_finds_model_ids_and_skips_placeholders() {
    let text = "use `hf/meta-llama/Llama-3.1-8B-Instruct:cerebras`. Or hf/Qwen/Qwen3-8B, \
                not `hf/<model>:fal-ai`, `hf/*` nor crates/gw-hf/pricing.toml; \
                [\"hf/black-forest-labs/FLUX.1-dev:fal-ai\".to_owned()]";
    assert_eq!(
        hf_models_named_in(text),
        [
            "meta-llama/Llama-3.1-8B-Instruct:cerebras",
            "Qwen/Qwen3-8B",
            "black-forest-labs/FLUX.1-dev:fal-ai",
        ]
    );
    let config = "[providers.hf]\napi_key_env = \"HF_TOKEN\"\nmodels = [\"a/b\", \
                  { id = \"c/d:fal-ai\", serves = [\"images\"] }]\n\n[providers.x]\nmodels = [\"e/f\"]\n";
    assert_eq!(hf_models_configured_in(config), ["a/b", "c/d:fal-ai"]);
}

#[test]
fn every_hf_model_the_readme_config_and_examples_name_is_priced() {
    let catalog = catalog();
    let models = shipped_models();
    // The scan must see the models it is meant to guard, or it proves nothing.
    for known in [
        "meta-llama/Llama-3.1-8B-Instruct",
        "meta-llama/Llama-3.1-8B-Instruct:cerebras",
        "openai/gpt-oss-120b:cerebras",
        "Qwen/Qwen3-8B",
        "Qwen/Qwen3-32B:cerebras",
        "black-forest-labs/FLUX.1-dev:fal-ai",
    ] {
        assert!(
            models.iter().any(|(m, _)| m == known),
            "{known} not found in {models:?}"
        );
    }
    let unpriced: Vec<_> = models
        .iter()
        .filter(|(model, _)| !priced(&catalog, model))
        .collect();
    assert!(
        unpriced.is_empty(),
        "named but unpriced (Free, Basic and Pro refuse them): {unpriced:?}"
    );
}

/// The `[[text]]` entries of the file as (model, source): the catalog keeps no sources.
fn text_entries() -> Vec<(String, String)> {
    let value = |block: &str, key: &str| {
        block.lines().find_map(|line| {
            let rest = line.strip_prefix(key)?.trim_start().strip_prefix('=')?;
            Some(rest.trim().trim_matches('"').to_owned())
        })
    };
    PRICES
        .split("[[")
        .filter_map(|block| block.strip_prefix("text]]"))
        .map(|block| {
            let model = value(block, "model").expect("every entry has a model");
            let source = value(block, "source").unwrap_or_else(|| panic!("{model}: no source"));
            (model, source)
        })
        .collect()
}

#[test]
fn every_chat_price_names_its_source_and_date_and_a_bare_id_is_marked_estimated() {
    let entries = text_entries();
    assert!(entries.len() >= 10, "{entries:?}");
    for (model, source) in &entries {
        // A suffix pins one backend, whose rate it is; a bare id may land on any backend, so its
        // price is the gateway's estimate, made from the backends' entries (or a stated
        // stand-in).
        let bare = !model.contains(':');
        assert!(
            bare || source.contains("https://"),
            "{model}: no page: {source}"
        );
        assert!(
            source.contains("read 20"),
            "{model}: no read date: {source}"
        );
        assert_eq!(
            source.starts_with("estimated"),
            bare,
            "{model}: a bare id is estimated, a backend's rate is not: {source}"
        );
    }
}

#[test]
fn a_bare_hub_id_costs_at_least_every_priced_backend() {
    let catalog = catalog();
    let entries = text_entries();
    let cached = |p: &TokenPrice| p.cached_input.unwrap_or(p.input);
    let mut compared = 0;
    for (bare, _) in entries.iter().filter(|(m, _)| !m.contains(':')) {
        let top = catalog.text_price(PROVIDER, bare).unwrap().base;
        let prefix = format!("{bare}:");
        for (model, _) in entries.iter().filter(|(m, _)| m.starts_with(&prefix)) {
            let rate = catalog.text_price(PROVIDER, model).unwrap().base;
            assert!(top.input >= rate.input, "{model} input above {bare}'s");
            assert!(top.output >= rate.output, "{model} output above {bare}'s");
            assert!(cached(&top) >= cached(&rate), "{model} cached input");
            compared += 1;
        }
    }
    assert!(compared >= 8, "{compared}");
}

#[test]
fn costs_of_the_readme_example_and_its_bare_id() {
    let catalog = catalog();
    assert_eq!(catalog.version_of(PROVIDER), "2026-11-28.2");
    // 12 prompt and 9 generated tokens.
    let usage = TokenUsage {
        input_tokens: 12,
        output_tokens: 9,
        ..TokenUsage::default()
    };
    let cost = |model: &str| {
        catalog
            .text_cost(PROVIDER, model, &usage)
            .unwrap()
            .to_string()
    };
    // On Cerebras at $0.10 / $0.10 per 1M.
    assert_eq!(
        cost("meta-llama/Llama-3.1-8B-Instruct:cerebras"),
        "0.0000021"
    );
    // Without a backend, at the highest backend's $0.20 / $0.20 per 1M.
    assert_eq!(cost("meta-llama/Llama-3.1-8B-Instruct"), "0.0000042");
}
