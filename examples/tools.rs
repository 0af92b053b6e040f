//! A tool round trip: the model asks for the weather, the program answers, the model replies.
//! The same code runs on any provider with tools; only the model name changes.
//!
//! ```sh
//! GEMINI_API_KEY=... cargo run --example tools --features gemini,hf -- gemini/gemini-2.5-flash
//! HF_TOKEN=... cargo run --example tools --features gemini,hf -- hf/Qwen/Qwen3-32B:cerebras
//! ```
//!
//! `GEMINI_BASE_URL` / `HF_BASE_URL` point a provider elsewhere, such as the canned mock
//! (`cargo xtask mock-upstream`, with any key).

use llm_gateway::{Gateway, Message, ProviderConfig, ProvidersConfig, Registry, TextRequest, Tool};
use serde_json::json;

#[tokio::main]
async fn main() -> llm_gateway::Result<()> {
    let model = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "gemini/gemini-2.5-flash".to_owned());
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
    println!("{}", weather(&gateway, &model).await?);
    Ok(())
}

/// Asks `model` about the weather, runs the call it makes, and returns its final answer.
async fn weather(gateway: &Gateway, model: &str) -> llm_gateway::Result<String> {
    let tool = Tool::function(
        "get_weather",
        json!({
            "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]
        }),
    );
    let ask = TextRequest::new(model).user("Weather in Paris?").tool(tool);
    let answer = gateway.generate(ask.clone()).await?;
    let Some(call) = answer.tool_calls.first() else {
        return Ok(answer.content);
    };
    println!("the model called {}({})", call.name, call.arguments);
    let result = format!("14 degrees (asked with {})", call.arguments);
    let next = ask
        .message(Message::assistant_calls(
            answer.content.clone(),
            answer.tool_calls.clone(),
        ))
        .message(Message::tool_result(call.id.clone(), result));
    Ok(gateway.generate(next).await?.content)
}
