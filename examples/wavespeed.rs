//! An image from WaveSpeedAI's FLUX.1 [dev], then its background removed: two tasks, each
//! submitted once and polled until it ends.
//!
//! ```sh
//! WAVESPEED_API_KEY=... cargo run --example wavespeed --features wavespeed -- \
//!     "a red fox sitting in the snow, studio photo"
//! ```
//!
//! Prints the URL of each result (WaveSpeed hosts them for a limited time). `WAVESPEED_BASE_URL`
//! points the provider elsewhere, such as a local mock.

use llm_gateway::{
    Gateway, ImageEditRequest, ImageRequest, MediaInput, MediaOutput, ProviderConfig,
    ProvidersConfig, Registry,
};

#[tokio::main]
async fn main() -> llm_gateway::Result<()> {
    let prompt = std::env::args().skip(1).collect::<Vec<_>>().join(" ");
    let prompt = if prompt.is_empty() {
        "a red fox sitting in the snow, studio photo".to_owned()
    } else {
        prompt
    };

    let mut providers = ProvidersConfig::new();
    providers.insert(
        "wavespeed".to_owned(),
        ProviderConfig {
            base_url: std::env::var("WAVESPEED_BASE_URL").ok(),
            ..ProviderConfig::default()
        },
    );
    let mut registry = Registry::new();
    for left_out in llm_gateway::register_enabled(&mut registry, &providers)? {
        eprintln!("left out: {left_out}");
    }
    let gateway = Gateway::new(registry);

    let mut req = ImageRequest::new("wavespeed/wavespeed-ai/flux-dev", prompt);
    // Sent as WaveSpeed's `"1024*768"`; flux-dev takes 512 to 1536 a side.
    req.size = Some("1024x768".to_owned());
    let drawn = gateway.generate_image(req).await?;
    let Some(MediaOutput::Url { url, .. }) = drawn.images.first() else {
        return Err(llm_gateway::Error::decode(
            "WaveSpeed answered without an image URL",
        ));
    };
    println!("drawn: {url}");

    // The background remover does one kind of edit, so the request need not name it.
    let cutout = ImageEditRequest::new(
        "wavespeed/wavespeed-ai/image-background-remover",
        vec![MediaInput::Url(url.clone())],
    );
    let cut = gateway.edit_image(cutout).await?;
    for image in &cut.images {
        match image {
            MediaOutput::Url { url, .. } => println!("without its background: {url}"),
            MediaOutput::Bytes { data, mime } => println!("{} bytes of {mime}", data.len()),
            _ => println!("an image in a form this example does not know"),
        }
    }
    Ok(())
}
