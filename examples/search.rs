//! One query on Tavily, Serper and Exa at once, the results side by side.
//!
//! ```sh
//! TAVILY_API_KEY=... SERPER_API_KEY=... EXA_API_KEY=... \
//!     cargo run --example search --features tavily,serper,exa -- "rust async runtimes"
//! ```
//!
//! A provider whose key is not set is left out. `<PROVIDER>_BASE_URL` (e.g. `TAVILY_BASE_URL`)
//! points a provider elsewhere, such as a local mock.

use llm_gateway::{Gateway, ProviderConfig, ProvidersConfig, Registry, SearchRequest};

/// The search providers this example asks, as the gateway names them.
const PROVIDERS: [&str; 3] = ["tavily", "serper", "exa"];
/// How wide a column is.
const WIDTH: usize = 38;
/// How many results each provider is asked for.
const RESULTS: u32 = 5;

#[tokio::main]
async fn main() -> llm_gateway::Result<()> {
    let query = std::env::args().skip(1).collect::<Vec<_>>().join(" ");
    let query = if query.is_empty() {
        "rust async runtimes".to_owned()
    } else {
        query
    };
    let mut providers = ProvidersConfig::new();
    for name in PROVIDERS {
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

    // All three at once; each column is one provider's answer, or why it has none.
    let searches = PROVIDERS.map(|name| {
        let gateway = gateway.clone();
        let mut req = SearchRequest::new(name, query.clone());
        req.max_results = Some(RESULTS);
        tokio::spawn(async move { gateway.search(req).await })
    });
    let mut columns = Vec::new();
    for (name, search) in PROVIDERS.into_iter().zip(searches) {
        let lines = match search.await {
            Ok(Ok(answer)) => answer
                .results
                .iter()
                .flat_map(|r| [cut(&r.title), cut(&r.url), String::new()])
                .collect(),
            Ok(Err(e)) => vec![cut(&e.to_string())],
            Err(e) => vec![cut(&e.to_string())],
        };
        columns.push((name, lines));
    }
    println!("query: {query}\n");
    let header: Vec<String> = columns
        .iter()
        .map(|(n, _)| format!("{n:<WIDTH$}"))
        .collect();
    println!("{}", header.join(" | "));
    let rows = columns.iter().map(|(_, l)| l.len()).max().unwrap_or(0);
    for i in 0..rows {
        let cells: Vec<String> = columns
            .iter()
            .map(|(_, lines)| format!("{:<WIDTH$}", lines.get(i).map_or("", String::as_str)))
            .collect();
        println!("{}", cells.join(" | "));
    }
    Ok(())
}

/// `text` cut to a column's width, on a character boundary.
fn cut(text: &str) -> String {
    if text.chars().count() <= WIDTH {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(WIDTH - 1).collect();
    out.push('…');
    out
}
