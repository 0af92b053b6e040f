//! Image generation through the library, on Gemini and Hugging Face: one request type, the model
//! name picks the provider and, inside it, the API (Imagen or a Gemini image model; the
//! Hugging Face backend after the `:`).
//!
//! ```sh
//! GEMINI_API_KEY=... HF_TOKEN=... cargo run --example images --features gemini,hf
//! GEMINI_API_KEY=... HF_TOKEN=... cargo run --example images --features gemini,hf -- \
//!     gemini/imagen-4.0-fast-generate-001 hf/black-forest-labs/FLUX.1-dev:fal-ai
//! ```
//!
//! Each image is written to `image-<n>.<ext>` (or its URL printed, for backends that host their
//! images). `GEMINI_BASE_URL` / `HF_BASE_URL` point a provider elsewhere, such as a mock.

use llm_gateway::{
    Gateway, ImageFormat, ImageRequest, MediaOutput, ProviderConfig, ProvidersConfig, Registry,
};

#[tokio::main]
async fn main() -> llm_gateway::Result<()> {
    let mut models: Vec<String> = std::env::args().skip(1).collect();
    if models.is_empty() {
        models = vec![
            "gemini/gemini-2.5-flash-image".to_owned(),
            "hf/black-forest-labs/FLUX.1-dev:fal-ai".to_owned(),
        ];
    }
    let mut providers = ProvidersConfig::new();
    for name in ["gemini", "hf"] {
        let cfg = ProviderConfig {
            base_url: std::env::var(format!("{}_BASE_URL", name.to_uppercase())).ok(),
            ..ProviderConfig::default()
        };
        providers.insert(name.to_owned(), cfg);
    }
    let mut registry = Registry::new();
    for left_out in llm_gateway::register_enabled(&mut registry, &providers)? {
        eprintln!("left out: {left_out}");
    }
    let gateway = Gateway::new(registry);

    let mut saved = 0;
    for model in &models {
        let mut req = ImageRequest::new(model.as_str(), "A lighthouse at dusk, oil painting");
        // A square picture; Gemini maps it onto its 1:1 ratio, fal draws it as asked.
        req.size = Some("1024x1024".to_owned());
        // Bytes from every provider (fal's URL is downloaded by the gateway).
        req.response_format = Some(ImageFormat::B64Json);
        let answer = match gateway.generate_image(req).await {
            Ok(answer) => answer,
            Err(e) => {
                eprintln!("{model}: {e}");
                continue;
            }
        };
        for image in answer.images {
            match image {
                MediaOutput::Bytes { data, mime } => {
                    saved += 1;
                    let ext = mime.strip_prefix("image/").unwrap_or("bin");
                    let path = format!("image-{saved}.{ext}");
                    std::fs::write(&path, &data).map_err(|e| {
                        llm_gateway::Error::invalid_request(format!("cannot write {path}: {e}"))
                    })?;
                    println!("{model}: {path} ({} bytes)", data.len());
                }
                MediaOutput::Url { url, .. } => println!("{model}: {url}"),
                _ => println!("{model}: an output of another kind"),
            }
        }
    }
    Ok(())
}
