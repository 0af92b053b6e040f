//! One image from Stability AI, written to a file.
//!
//! ```sh
//! STABILITY_API_KEY=sk-... cargo run --example stability --features stability -- \
//!     stability/sd3.5-large "a lighthouse at dusk, oil painting" lighthouse.png
//! ```
//!
//! The model is `stability/<id>`: `ultra`, `core`, or an sd3 model (`sd3.5-large`,
//! `sd3.5-large-turbo`, `sd3.5-medium`, `sd3.5-flash`). `STABILITY_BASE_URL` points the provider
//! elsewhere, such as a local mock.

use llm_gateway::{Gateway, ImageRequest, MediaOutput, ProviderConfig, ProvidersConfig, Registry};

#[tokio::main]
async fn main() -> llm_gateway::Result<()> {
    let mut args = std::env::args().skip(1);
    let model = args.next().unwrap_or_else(|| "stability/core".to_owned());
    let prompt = args
        .next()
        .unwrap_or_else(|| "a lighthouse at dusk, oil painting".to_owned());
    let out = args.next().unwrap_or_else(|| "stability.png".to_owned());

    let mut providers = ProvidersConfig::new();
    providers.insert(
        "stability".to_owned(),
        ProviderConfig {
            base_url: std::env::var("STABILITY_BASE_URL").ok(),
            ..ProviderConfig::default()
        },
    );
    let mut registry = Registry::new();
    for left_out in llm_gateway::register_enabled(&mut registry, &providers)? {
        eprintln!("left out: {left_out}");
    }
    let gateway = Gateway::new(registry);

    let mut req = ImageRequest::new(model, prompt);
    // A size is sent as the aspect ratio it is exactly: 1536x1024 is 3:2.
    req.size = Some("1536x1024".to_owned());
    let answer = gateway.generate_image(req).await?;

    for (image, note) in answer.images.iter().zip(&answer.notes) {
        if note.content_filtered {
            eprintln!("Stability's moderation blurred this image");
        }
        if let Some(seed) = note.seed {
            eprintln!("seed {seed}");
        }
        match image {
            MediaOutput::Bytes { data, mime } => {
                std::fs::write(&out, data).map_err(|e| {
                    llm_gateway::Error::invalid_request(format!("cannot write {out}: {e}"))
                })?;
                println!("{out}: {} bytes of {mime}", data.len());
            }
            MediaOutput::Url { url, .. } => println!("{url}"),
            _ => println!("an image in a form this example does not know"),
        }
    }
    Ok(())
}
