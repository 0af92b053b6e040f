//! Tool calling, linked images and several answers through the public API, against a mock
//! Gemini playing recorded answers (`tests/fixtures/text/function_call*.json`,
//! `stream_function_call.json`).

use futures_util::StreamExt;
use gateway_core::http::DownloadSettings;
use gateway_core::{
    ErrorKind, FinishReason, Message, Part, ProviderConfig, Role, TextChunk, TextModel,
    TextRequest, Tool, ToolChoice, encode_base64,
};
use gw_gemini::{GeminiClient, PROVIDER};
use gw_mock::MockUpstream;
use gw_mock::fixture::{Respond, UpstreamExpect, UpstreamStep};
use serde_json::{Value, json};

const KEY: &str = "AIza-tools-test-key";

fn gemini_step(model: &str, method: &str, respond: Respond) -> UpstreamStep {
    UpstreamStep {
        expect: UpstreamExpect {
            method: Some("POST".into()),
            path: Some(format!("/v1beta/models/{model}:{method}")),
            headers: [("x-goog-api-key".to_owned(), json!(KEY))].into(),
            ..UpstreamExpect::default()
        },
        respond,
    }
}

fn recorded(name: &str) -> Respond {
    Respond::recorded(env!("CARGO_MANIFEST_DIR"), name)
}

fn client(mock: &MockUpstream) -> GeminiClient {
    GeminiClient::builder()
        .api_key(KEY)
        .base_url(mock.url())
        .build()
        .unwrap()
}

/// The recorded signature of `tests/fixtures/text/function_call.json`, as Gemini sent it.
fn recorded_signature() -> String {
    recorded("text/function_call.json").json.unwrap()["candidates"][0]["content"]["parts"][0]
        ["thoughtSignature"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn capability_tool() -> Tool {
    Tool::function(
        "load_capability",
        json!({
            "description": "Typed arguments for a `load_capability` tool call.",
            "properties": {"id": {"description": "The id of the capability to load.", "type": "string"}},
            "required": ["id"],
            "type": "object"
        }),
    )
    .description("Load a listed capability.")
}

#[tokio::test]
async fn a_two_turn_tool_round_trip_sends_the_thought_signature_back() {
    const MODEL: &str = "gemini-3.6-flash";
    let mock = MockUpstream::start(vec![
        gemini_step(
            MODEL,
            "generateContent",
            recorded("text/function_call.json"),
        ),
        gemini_step(
            MODEL,
            "generateContent",
            recorded("text/function_call_answer.json"),
        ),
    ])
    .await
    .unwrap();
    let gemini = client(&mock);

    let mut first = TextRequest::new(MODEL)
        .user("First load the refunds capability.")
        .tool(capability_tool());
    first.tool_choice = Some(ToolChoice::Auto);
    let answer = gemini.generate(first.clone()).await.unwrap();
    assert_eq!(answer.finish_reason, FinishReason::ToolCalls);
    assert_eq!(answer.tool_calls.len(), 1);
    let call = answer.tool_calls[0].clone();
    assert_eq!(call.name, "load_capability");
    assert_eq!(call.arguments, r#"{"id":"refunds"}"#);
    assert!(call.id.starts_with("orHZBIN2__thought__"), "{}", call.id);

    // The client sends the call back as it got it, with the tool's result.
    let second = first
        .message(Message::assistant_calls("", vec![call.clone()]))
        .message(Message::tool_result(call.id.clone(), "loaded"));
    let answer = gemini.generate(second).await.unwrap();
    assert_eq!(answer.content, "A-4417: refund allowed");
    assert_eq!(answer.finish_reason, FinishReason::Stop);
    assert_eq!(answer.usage.input_tokens, 435);

    assert_eq!(mock.verify(), Vec::<String>::new());
    let received = mock.received();
    let declarations = json!([{"functionDeclarations": [{
        "name": "load_capability",
        "description": "Load a listed capability.",
        "parametersJsonSchema": {
            "description": "Typed arguments for a `load_capability` tool call.",
            "properties": {"id": {"description": "The id of the capability to load.", "type": "string"}},
            "required": ["id"],
            "type": "object"
        }
    }]}]);
    assert_eq!(
        received[0].json().unwrap(),
        json!({
            "contents": [{"role": "user", "parts": [{"text": "First load the refunds capability."}]}],
            "tools": declarations,
            "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}}
        })
    );
    assert_eq!(
        received[1].json().unwrap(),
        json!({
            "contents": [
                {"role": "user", "parts": [{"text": "First load the refunds capability."}]},
                {"role": "model", "parts": [{
                    "functionCall": {"id": "orHZBIN2", "name": "load_capability", "args": {"id": "refunds"}},
                    "thoughtSignature": recorded_signature()
                }]},
                {"role": "user", "parts": [{
                    "functionResponse": {"id": "orHZBIN2", "name": "load_capability", "response": {"output": "loaded"}}
                }]}
            ],
            "tools": declarations,
            "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}}
        })
    );
}

#[tokio::test]
async fn a_streamed_function_call() {
    const MODEL: &str = "gemini-3.8-flash";
    let mock = MockUpstream::start(vec![gemini_step(
        MODEL,
        "streamGenerateContent",
        recorded("text/stream_function_call.json"),
    )])
    .await
    .unwrap();
    let mut req = TextRequest::new(MODEL)
        .user("Which of Berlin, Paris and Cairo is in Africa? Get its weather.")
        .tool(Tool::function(
            "get_weather",
            json!({"type": "object", "properties": {
                "city": {"type": "string"}, "country": {"type": "string"}, "unit": {"enum": ["C", "F"]}
            }}),
        ));
    req.tool_choice = Some(ToolChoice::Required);
    let items: Vec<_> = client(&mock).stream(req).await.unwrap().collect().await;
    let chunks: Vec<TextChunk> = items.into_iter().map(Result::unwrap).collect();

    let calls: Vec<_> = chunks
        .iter()
        .filter_map(|c| match c {
            TextChunk::ToolCall {
                index,
                id,
                name,
                arguments,
            } => Some((
                *index,
                id.clone().unwrap(),
                name.clone().unwrap(),
                arguments.clone(),
            )),
            _ => None,
        })
        .collect();
    assert_eq!(calls.len(), 1, "{chunks:?}");
    let (index, id, name, arguments) = &calls[0];
    assert_eq!((*index, name.as_str()), (0, "get_weather"));
    assert!(id.starts_with("call_267014__thought__"), "{id}");
    assert_eq!(
        serde_json::from_str::<Value>(arguments).unwrap(),
        json!({"country": "EG", "city": "Cairo", "unit": "C"})
    );
    assert_eq!(
        chunks.first(),
        Some(&TextChunk::Delta(
            "I will check the current weather in Cairo in Celsius.".into()
        ))
    );
    assert_eq!(
        chunks.last(),
        Some(&TextChunk::Finish(FinishReason::ToolCalls))
    );

    assert_eq!(mock.verify(), Vec::<String>::new());
    let body = mock.received()[0].json().unwrap();
    assert_eq!(
        body["toolConfig"],
        json!({"functionCallingConfig": {"mode": "ANY"}})
    );
    assert_eq!(
        body["tools"][0]["functionDeclarations"][0]["name"],
        "get_weather"
    );
}

/// A mock that serves `bytes` as `content_type` at `GET /cat.png`.
fn image_step(bytes: &[u8], content_type: &str) -> UpstreamStep {
    UpstreamStep {
        expect: UpstreamExpect {
            method: Some("GET".into()),
            path: Some("/cat.png".into()),
            ..UpstreamExpect::default()
        },
        respond: Respond {
            base64: Some(encode_base64(bytes)),
            ..Respond::default()
        }
        .header("content-type", content_type),
    }
}

fn with_image(url: &str) -> TextRequest {
    TextRequest::new("gemini-2.5-flash").message(Message::with_parts(
        Role::User,
        vec![Part::text("What is this?"), Part::image_url(url)],
    ))
}

fn allowing_private(mock: &MockUpstream) -> GeminiClient {
    let downloads: DownloadSettings =
        serde_json::from_value(json!({"allow_private": true})).unwrap();
    GeminiClient::builder()
        .api_key(KEY)
        .base_url(mock.url())
        .downloads(downloads)
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_linked_image_is_downloaded_and_sent_inline() {
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n fake image bytes";
    let images = MockUpstream::start(vec![image_step(PNG, "image/png")])
        .await
        .unwrap();
    let gemini = MockUpstream::start(vec![gemini_step(
        "gemini-2.5-flash",
        "generateContent",
        recorded("text/generate_ok.json"),
    )])
    .await
    .unwrap();
    // The operator allows private addresses in `[providers.gemini.downloads]`.
    let cfg: ProviderConfig = toml::from_str(&format!(
        "api_key = \"{KEY}\"\nbase_url = \"{}\"\n[downloads]\nallow_private = true\n",
        gemini.url()
    ))
    .unwrap();
    let client = GeminiClient::from_config(&cfg).unwrap();
    assert!(client.download_policy().allow_private);
    assert_eq!(
        client.download_policy().max_bytes,
        gw_gemini::DEFAULT_DOWNLOAD_MAX_BYTES
    );

    let answer = client
        .generate(with_image(&format!("{}/cat.png", images.url())))
        .await
        .unwrap();
    assert_eq!(answer.content, "Hi!");
    assert_eq!(images.verify(), Vec::<String>::new());
    assert_eq!(gemini.verify(), Vec::<String>::new());
    assert_eq!(
        gemini.received()[0].json().unwrap()["contents"][0]["parts"],
        json!([
            {"text": "What is this?"},
            {"inlineData": {"mimeType": "image/png", "data": encode_base64(PNG)}}
        ])
    );
    // The image server got no key.
    assert_eq!(images.received()[0].header("x-goog-api-key"), None);
}

#[tokio::test]
async fn linked_images_that_cannot_be_used_fail_before_gemini_is_called() {
    let images = MockUpstream::start(vec![image_step(b"<html></html>", "text/html")])
        .await
        .unwrap();
    let gemini = MockUpstream::start(Vec::new()).await.unwrap();
    let url = format!("{}/cat.png", images.url());

    // Not an image.
    let err = allowing_private(&gemini)
        .generate(with_image(&url))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::InvalidRequest, "{err}");
    assert_eq!(err.param(), Some("messages[0].content[1]"));
    assert_eq!(err.provider(), PROVIDER);

    // A private address, by default: refused without connecting.
    let Err(err) = client(&gemini).stream(with_image(&url)).await else {
        panic!("a private address must be refused");
    };
    assert_eq!(err.kind(), &ErrorKind::InvalidRequest, "{err}");
    assert_eq!(err.param(), Some("messages[0].content[1]"));
    assert!(err.message().contains("127.0.0.1"), "{err}");
    assert_eq!(
        images.received().len(),
        1,
        "only the allowed download reached it"
    );

    // A request Gemini cannot take downloads nothing.
    let mut bad = with_image(&url);
    bad.stop = (0..6).map(|n| n.to_string()).collect();
    let err = allowing_private(&gemini).generate(bad).await.unwrap_err();
    assert_eq!(err.param(), Some("stop"));
    assert_eq!(images.received().len(), 1);

    assert!(gemini.received().is_empty());
}

#[tokio::test]
async fn n_answers_come_back_as_alternatives() {
    let mock = MockUpstream::start(vec![gemini_step(
        "gemini-2.5-flash",
        "generateContent",
        Respond::json(json!({
            "candidates": [
                {"content": {"role": "model", "parts": [{"text": "Crimson."}]}, "finishReason": "STOP", "index": 1},
                {"content": {"role": "model", "parts": [{"text": "Scarlet."}]}, "finishReason": "STOP", "index": 0}
            ],
            "usageMetadata": {"promptTokenCount": 6, "candidatesTokenCount": 6, "thoughtsTokenCount": 20, "totalTokenCount": 32},
            "modelVersion": "gemini-2.5-flash",
            "responseId": "two"
        })),
    )])
    .await
    .unwrap();
    let mut req = TextRequest::new("gemini-2.5-flash").user("A shade of red, one word.");
    req.n = Some(2);
    let answer = client(&mock).generate(req).await.unwrap();
    assert_eq!(answer.content, "Scarlet.");
    assert_eq!(answer.alternatives.len(), 1);
    assert_eq!(answer.alternatives[0].content, "Crimson.");
    assert_eq!(answer.alternatives[0].finish_reason, FinishReason::Stop);
    assert_eq!(answer.usage.output_tokens, 26);
    assert_eq!(mock.verify(), Vec::<String>::new());
    assert_eq!(
        mock.received()[0].json().unwrap()["generationConfig"],
        json!({"candidateCount": 2})
    );
}

#[tokio::test]
async fn capabilities_are_announced() {
    let mock = MockUpstream::start(Vec::new()).await.unwrap();
    let caps = client(&mock).capabilities();
    assert!(caps.tools && caps.logprobs && caps.reasoning_effort && caps.image_input);
    assert_eq!(caps.max_n, 8);
}

#[test]
fn download_limits_come_from_the_configuration() {
    let cfg = |extra: &str| -> ProviderConfig {
        toml::from_str(&format!("api_key = \"{KEY}\"\n{extra}")).unwrap()
    };
    let client =
        GeminiClient::from_config(&cfg("[downloads]\nmax_bytes = 1000\ntimeout_ms = 500\n"))
            .unwrap();
    let policy = client.download_policy();
    assert_eq!(policy.max_bytes, 1000);
    assert_eq!(policy.timeout, std::time::Duration::from_millis(500));
    assert!(!policy.allow_private);
    // A typo is refused by name, by `register` too.
    let typo = cfg("[downloads]\nmax_byte = 1\n");
    let err = GeminiClient::from_config(&typo).unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Config);
    assert!(
        err.message().contains("providers.gemini.downloads"),
        "{err}"
    );
    assert!(err.message().contains("max_byte"), "{err}");
    let mut reg = gateway_core::Registry::new();
    let err = gw_gemini::register(&mut reg, &typo).unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Config);
}
