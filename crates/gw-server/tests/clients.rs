//! A real OpenAI client against the running server: the Rust `async-openai` crate, used as an
//! application uses it, drives tool round trips (blocking on Gemini, streamed on Hugging Face),
//! an image input by URL, and the usage log's record of the caller's `user` and `metadata`.
//!
//! The providers are the canned mock (`gw_mock::canned`), which answers an offered tool with a
//! call and, like Gemini 3, refuses a conversation whose function call lost its thought
//! signature; the image test uses a scripted mock to check the bytes Gemini receives.

mod support;

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::types::chat::{
    ChatCompletionMessageToolCall, ChatCompletionMessageToolCalls,
    ChatCompletionRequestAssistantMessageArgs, ChatCompletionRequestMessage,
    ChatCompletionRequestMessageContentPartImage, ChatCompletionRequestMessageContentPartText,
    ChatCompletionRequestToolMessageArgs, ChatCompletionRequestUserMessageArgs,
    ChatCompletionRequestUserMessageContent, ChatCompletionRequestUserMessageContentPart,
    ChatCompletionTool, ChatCompletionTools, CreateChatCompletionRequest,
    CreateChatCompletionRequestArgs, FinishReason, FunctionCall, FunctionObject, ImageUrl,
};
use futures_util::StreamExt;
use gw_mock::MockUpstream;
use gw_mock::fixture::{Respond, UpstreamExpect, UpstreamStep};
use gw_server::Config;
use serde_json::{Value, json};
use support::{config_for, get_json, open_store, start, user};

/// Serves `router` on a local port; its base URL.
async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    url
}

/// The gateway over the canned mock, and an `async-openai` client with an enterprise key.
async fn gateway_on(upstream: &str) -> (support::Server, Client<OpenAIConfig>) {
    gateway_with(config_for(upstream)).await
}

async fn gateway_with(config: Config) -> (support::Server, Client<OpenAIConfig>) {
    let store = open_store("sqlite::memory:").await;
    let (_, key) = user(&store, "enterprise").await;
    let server = start(&config, Some(store)).await;
    let client = Client::with_config(
        OpenAIConfig::new()
            .with_api_base(format!("{}/v1", server.url))
            .with_api_key(key),
    );
    (server, client)
}

fn weather_tool() -> ChatCompletionTools {
    ChatCompletionTools::Function(ChatCompletionTool {
        function: FunctionObject {
            name: "get_weather".into(),
            description: Some("The weather now in a city".into()),
            parameters: Some(json!({
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"]
            })),
            strict: None,
        },
    })
}

fn ask(model: &str, messages: &[ChatCompletionRequestMessage]) -> CreateChatCompletionRequest {
    CreateChatCompletionRequestArgs::default()
        .model(model)
        .messages(messages.to_vec())
        .tools(vec![weather_tool()])
        .build()
        .unwrap()
}

fn user_says(text: &str) -> ChatCompletionRequestMessage {
    ChatCompletionRequestUserMessageArgs::default()
        .content(text)
        .build()
        .unwrap()
        .into()
}

/// The assistant turn that made `calls` and the tool's `result` for the first one, as an
/// application appends them.
fn answer_calls(
    messages: &mut Vec<ChatCompletionRequestMessage>,
    calls: Vec<ChatCompletionMessageToolCalls>,
    result: &str,
) {
    let ChatCompletionMessageToolCalls::Function(first) = &calls[0] else {
        panic!("a function call, not {:?}", calls[0]);
    };
    let id = first.id.clone();
    messages.push(
        ChatCompletionRequestAssistantMessageArgs::default()
            .tool_calls(calls)
            .build()
            .unwrap()
            .into(),
    );
    messages.push(
        ChatCompletionRequestToolMessageArgs::default()
            .tool_call_id(id)
            .content(result)
            .build()
            .unwrap()
            .into(),
    );
}

#[tokio::test]
async fn a_gemini_tool_round_trip_keeps_the_thought_signature() {
    let upstream = serve(gw_mock::canned::router()).await;
    let (server, client) = gateway_on(&upstream).await;
    let model = "gemini/gemini-2.5-flash";
    let mut messages = vec![user_says("What is the weather in Paris?")];

    let first = client.chat().create(ask(model, &messages)).await.unwrap();
    let choice = &first.choices[0];
    assert_eq!(choice.finish_reason, Some(FinishReason::ToolCalls));
    assert_eq!(
        choice.message.content, None,
        "a call-only answer has no text"
    );
    let calls = choice.message.tool_calls.clone().expect("a tool call");
    let ChatCompletionMessageToolCalls::Function(ChatCompletionMessageToolCall {
        function: FunctionCall { name, arguments },
        ..
    }) = &calls[0]
    else {
        panic!("{calls:?}");
    };
    assert_eq!(name, "get_weather");
    let arguments: Value = serde_json::from_str(arguments).unwrap();
    assert_eq!(arguments, json!({"city": "Paris"}));

    // The canned Gemini refuses the next turn, as Gemini 3 does, if the call came back without
    // the signature its thinking model gave it.
    answer_calls(&mut messages, calls, "18 degrees and sunny");
    let second = client.chat().create(ask(model, &messages)).await.unwrap();
    let text = second.choices[0]
        .message
        .content
        .clone()
        .unwrap_or_default();
    assert!(
        text.starts_with("Mock answer using get_weather") && text.contains("18 degrees and sunny"),
        "{text}"
    );
    assert_eq!(second.choices[0].finish_reason, Some(FinishReason::Stop));
    drop(server);
}

#[tokio::test]
async fn a_streamed_tool_call_on_hugging_face_is_assembled_by_the_client() {
    let upstream = serve(gw_mock::canned::router()).await;
    let (_server, client) = gateway_on(&upstream).await;
    let model = "hf/meta-llama/Llama-3.1-8B-Instruct";
    let mut messages = vec![user_says("What is the weather in Rome?")];

    let mut stream = client
        .chat()
        .create_stream(ask(model, &messages))
        .await
        .unwrap();
    let (mut id, mut name, mut arguments, mut finish) = (None, None, String::new(), None);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        let Some(choice) = chunk.choices.first() else {
            continue;
        };
        for call in choice.delta.tool_calls.iter().flatten() {
            assert_eq!(call.index, 0);
            id = id.or(call.id.clone());
            let function = call.function.as_ref();
            name = name.or(function.and_then(|f| f.name.clone()));
            arguments.push_str(function.and_then(|f| f.arguments.as_deref()).unwrap_or(""));
        }
        finish = finish.or(choice.finish_reason);
    }
    assert_eq!(finish, Some(FinishReason::ToolCalls));
    assert_eq!(name.as_deref(), Some("get_weather"));
    let parsed: Value = serde_json::from_str(&arguments).unwrap();
    assert_eq!(parsed, json!({"city": "Rome"}));

    let call = ChatCompletionMessageToolCalls::Function(ChatCompletionMessageToolCall {
        id: id.expect("the call's id"),
        function: FunctionCall {
            name: "get_weather".into(),
            arguments,
        },
    });
    answer_calls(&mut messages, vec![call], "21 degrees");
    let mut stream = client
        .chat()
        .create_stream(ask(model, &messages))
        .await
        .unwrap();
    let mut text = String::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        if let Some(content) = chunk
            .choices
            .first()
            .and_then(|c| c.delta.content.as_deref())
        {
            text.push_str(content);
        }
    }
    assert_eq!(text, "Mock answer using get_weather: 21 degrees");
}

#[tokio::test]
async fn an_image_by_url_reaches_gemini_inline() {
    let png: &[u8] = b"\x89PNG\r\n\x1a\n a very small picture";
    let images = serve(axum::Router::new().route(
        "/cat.png",
        axum::routing::get(move || async move { ([("content-type", "image/png")], png) }),
    ))
    .await;
    let inline = llm_gateway::encode_base64(png);
    let gemini = MockUpstream::start(vec![UpstreamStep {
        expect: UpstreamExpect {
            json: Some(json!({"contents": [{"role": "user", "parts": [
                {"text": "What is in this picture?"},
                {"inlineData": {"mimeType": "image/png", "data": inline}}
            ]}]})),
            ..UpstreamExpect::default()
        },
        respond: Respond::json(json!({
            "candidates": [{"content": {"role": "model", "parts": [{"text": "A cat."}]},
                            "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 262, "candidatesTokenCount": 3,
                              "totalTokenCount": 265}
        })),
    }])
    .await
    .unwrap();
    // The picture is on this machine: the operator allows private addresses for Gemini's
    // downloads (the default refuses them).
    let text = format!(
        "[providers.gemini]\nbase_url = \"{}\"\napi_key = \"provider-key\"\n\
         [providers.gemini.downloads]\nallow_private = true\n",
        gemini.url()
    );
    let config = Config::from_toml(&text, "test config", std::iter::empty()).unwrap();
    let (_server, client) = gateway_with(config).await;
    let message = ChatCompletionRequestUserMessageArgs::default()
        .content(ChatCompletionRequestUserMessageContent::Array(vec![
            ChatCompletionRequestUserMessageContentPart::Text(
                ChatCompletionRequestMessageContentPartText {
                    text: "What is in this picture?".into(),
                },
            ),
            ChatCompletionRequestUserMessageContentPart::ImageUrl(
                ChatCompletionRequestMessageContentPartImage {
                    image_url: ImageUrl {
                        url: format!("{images}/cat.png"),
                        detail: None,
                    },
                },
            ),
        ]))
        .build()
        .unwrap();
    let request = CreateChatCompletionRequestArgs::default()
        .model("gemini/gemini-2.5-flash")
        .messages(vec![message.into()])
        .build()
        .unwrap();
    let answer = client.chat().create(request).await.unwrap();
    assert_eq!(answer.choices[0].message.content.as_deref(), Some("A cat."));
    assert_eq!(answer.usage.map(|u| u.prompt_tokens), Some(262));
    assert_eq!(gemini.verify(), Vec::<String>::new());
}

#[tokio::test]
async fn user_and_metadata_are_kept_and_filter_the_usage_log() {
    let upstream = serve(gw_mock::canned::router()).await;
    let store = open_store("sqlite::memory:").await;
    let (_, key) = user(&store, "enterprise").await;
    let server = start(&config_for(&upstream), Some(store)).await;
    let client = Client::with_config(
        OpenAIConfig::new()
            .with_api_base(format!("{}/v1", server.url))
            .with_api_key(key.clone()),
    );
    for (team, end_user) in [("search", "end-1"), ("search", "end-2"), ("ads", "end-1")] {
        let request = CreateChatCompletionRequestArgs::default()
            .model("gemini/gemini-2.5-flash")
            .messages(vec![user_says("Say hi")])
            .user(end_user)
            .metadata(json!({"team": team}))
            .build()
            .unwrap();
        client.chat().create(request).await.unwrap();
    }
    let log = get_json(&server.url, &key, "/v1/usage/log?metadata.team=search").await;
    let rows = log["data"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{log}");
    assert_eq!(rows[0]["end_user"], "end-2");
    assert_eq!(rows[0]["metadata"], json!({"team": "search"}));
    assert_eq!(log["totals"]["requests"], 2);
    let one = get_json(
        &server.url,
        &key,
        "/v1/usage/log?metadata.team=search&end_user=end-1",
    )
    .await;
    assert_eq!(one["data"].as_array().map(Vec::len), Some(1), "{one}");
    let bad = get_json(&server.url, &key, "/v1/usage/log?team=search").await;
    assert_eq!(bad["error"]["param"], "team", "{bad}");
}
